package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/failedindex"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// A failed job (the job as submitted can never succeed) is not a dead letter: it stays a
// completed asynq task with its record, for its retention, and is never run again by itself.
// An operator may still choose to run one again, e.g. an ERROR_ZERO_BALANCE job after a top-up:
// RedriveFailed does, and the failed index below lets the web console list them without
// reading every completed task.

// FailedJobs lists the queue's failed jobs (the job as submitted can never succeed), newest
// first, from the index the worker keeps.
func (c *Client) FailedJobs(ctx context.Context, queue string) ([]FailedEntry, error) {
	return failedindex.List(ctx, c.rc, queue)
}

// ForgetFailed drops entries from the queue's index of failed jobs (their tasks are gone).
func (c *Client) ForgetFailed(ctx context.Context, queue string, entries []FailedEntry) error {
	return failedindex.Forget(ctx, c.rc, queue, entries)
}

// ErrNotFailed is returned (wrapped, saying what the job is) by RedriveFailed for a job that is
// not a failed one: solved, dead (redrive it from the dead-letter queue), still running, or
// already redriven by someone else.
var ErrNotFailed = errors.New("not a failed job")

// claimFailedScript takes a failed job's completed task out of asynq in one step, if it is still
// one: the task hash (KEYS[1]) in state completed with a record whose state is failed, and its
// entry in the queue's completed set (KEYS[2]); ARGV[1] is the ID. It returns 1 when it took the
// task. Of two redrives of one failed job (two operators, a stale page) exactly one goes through:
// the other finds a pending task, or one that ended otherwise, and changes nothing, so a job that
// is running again, or solved meanwhile, is never deleted and paid for twice.
//
// The keys and fields are asynq's (internal/keys, pinned by TestAsynqLayout; its deleteTaskCmd
// removes a completed task the same way); TestRedriveFailed checks them against asynq itself.
var claimFailedScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], '` + keys.AsynqStateField + `') ~= '` + keys.AsynqStateCompleted + `' then return 0 end
local rec = redis.call('HGET', KEYS[1], '` + keys.AsynqResultField + `')
if not rec or not string.find(rec, '"state":"failed"', 1, true) then return 0 end
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1`)

// RedriveFailed runs a failed job again, by an operator's explicit choice: its completed task is
// replaced by a new one with the same ID and job and a fresh retry budget, so it is paid for
// again. Like a dead letter's redrive it is a fresh start (see Client.Redrive): fresh timings, a
// fresh deadline for one that passed, and a new outcome sequence number for its callback. queue "" looks for the job in every queue (an error names the queues when more than one
// holds a failed job with that ID). It returns the queue the job runs in again.
//
// A job whose image body was deleted when it failed cannot run again (submit it anew). If the new
// task cannot be enqueued once the old one is taken, the job is put into the dead-letter queue,
// from where `solvequeue dlq redrive` runs it, and the error says so: it is never lost.
func (c *Client) RedriveFailed(ctx context.Context, queue, id string) (string, error) {
	info, err := c.findFailed(queue, id)
	if err != nil {
		return "", err
	}
	rec, _ := jobwire.DecodeRecord(info.Result)
	var p jobwire.Payload
	if json.Unmarshal(info.Payload, &p) == nil && p.BodyRef != "" {
		// Give the body its TTL again if it is still there (it is deleted when a job fails).
		alive, err := c.rc.Expire(ctx, p.BodyRef, c.cfg.BlobTTL).Result()
		if err != nil {
			return "", fmt.Errorf("redrive failed job %s: image body: %w", id, err)
		}
		if !alive {
			return "", fmt.Errorf("redrive failed job %s: its image body was deleted when it failed: submit the job anew", id)
		}
	}
	took, err := claimFailedScript.Run(ctx, c.rc, []string{keys.AsynqTask(info.Queue, id), keys.AsynqCompleted(info.Queue)}, id).Int()
	if err != nil {
		return "", fmt.Errorf("redrive failed job %s: %w", id, err)
	}
	if took != 1 {
		return "", fmt.Errorf("redrive failed job %s: %w: it changed meanwhile (redriven by someone else?)", id, ErrNotFailed)
	}
	code := ""
	if rec.Error != nil {
		code = rec.Error.ErrorCode
	}
	_ = failedindex.Forget(ctx, c.rc, info.Queue, []FailedEntry{{ID: id, Code: code}}) // a stale entry is dropped when read
	task := asynq.NewTask(jobwire.TaskType, freshStart(info.Payload, c.cfg.Now()),
		asynq.Queue(info.Queue), asynq.TaskID(id), asynq.MaxRetry(jobwire.AsynqMaxRetryDefault),
		asynq.Timeout(c.cfg.AttemptTimeout), asynq.Retention(c.cfg.Retention))
	if _, err := c.asynq.EnqueueContext(ctx, task); err != nil {
		return "", c.keepAsDeadLetter(ctx, info, rec, fmt.Errorf("redrive failed job %s: enqueue: %w", id, err))
	}
	return info.Queue, nil
}

// findFailed returns the completed task of a failed job, in queue or in the one queue that has it.
func (c *Client) findFailed(queue, id string) (*asynq.TaskInfo, error) {
	queues := []string{queue}
	if queue == "" {
		qs, err := c.inspector.Queues()
		if err != nil {
			return nil, fmt.Errorf("list queues: %w", err)
		}
		queues = queuereg.JobQueues(qs)
	}
	var found []*asynq.TaskInfo
	var other *asynq.TaskInfo
	for _, q := range queues {
		info, err := c.inspector.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read job %s: %w", id, err)
		}
		if jobwire.OutcomeOf(info).State == jobwire.StateFailed {
			found = append(found, info)
		} else {
			other = info
		}
	}
	switch {
	case len(found) == 1:
		return found[0], nil
	case len(found) > 1:
		names := make([]string, len(found))
		for i, f := range found {
			names[i] = f.Queue
		}
		return nil, fmt.Errorf("redrive failed job %s: queues %s each hold a failed job with this ID: name the queue", id, strings.Join(names, ", "))
	case other != nil:
		return nil, fmt.Errorf("redrive failed job %s: %w: it is %s in queue %s", id, ErrNotFailed, jobwire.OutcomeOf(other).State, other.Queue)
	}
	return nil, fmt.Errorf("redrive failed job %s: %w", id, jobwire.ErrJobNotFound)
}

// keepAsDeadLetter puts a failed job whose redrive lost its task into the dead-letter queue and
// returns err saying so.
func (c *Client) keepAsDeadLetter(ctx context.Context, info *asynq.TaskInfo, rec jobwire.Record, err error) error {
	d := DeadLetter{ID: info.ID, Queue: info.Queue, Payload: json.RawMessage(info.Payload), Record: rec, DeadAt: c.cfg.Now().UTC()}
	// Unbounded (limit 0): the job has no other place left, and this is one job an operator
	// is looking at, not a flood.
	if merr := deadletter.Put(context.WithoutCancel(ctx), c.rc, d, 0); merr != nil {
		return fmt.Errorf("%w; and it could not be kept in the dead-letter queue (%v): submit it again", err, merr)
	}
	return fmt.Errorf("%w; the job is in the dead-letter queue now: redrive it from there", err)
}
