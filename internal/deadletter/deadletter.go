package enqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// DeadLetterLimitDefault is the default bound on the number of dead letters (the worker's
// --dlq-limit): as many as asynq keeps in one queue's archive.
const DeadLetterLimitDefault = 10_000

// ErrDeadLetterFull is returned (wrapped) by PutDeadLetter when the dead-letter queue holds its
// limit of entries.
var ErrDeadLetterFull = errors.New("the dead-letter queue is full")

// putDeadLetter writes a dead letter into its queue's hash (KEYS[1]) when there is room (ARGV[3]
// is "1") or the entry is there already (a redelivered dead job rewrites its own). It returns 1
// when written.
var putDeadLetter = redis.NewScript(`
if ARGV[3] == '1' or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0`)

// PutDeadLetter writes d into the dead-letter queue, bounded by limit entries in all (0: no
// bound). The queue is never trimmed to make room: at the limit the new entry is refused, counted
// under keys.DeadLettersRefused, and ErrDeadLetterFull returned, so that the caller says so loudly;
// the job itself stays in asynq's archive, where the web UI shows it. The entries already there
// are kept whole until an operator redrives or purges them. Rewriting an entry that is already
// there (a redelivered dead job) always succeeds.
//
// The bound counts every queue's entries (CountDeadLetters) before the write, which goes to the
// job's queue's hash alone: on a Redis Cluster the queues' hashes are on different slots, so no
// one script can count and write. Jobs dying at the same moment may each find the last free room,
// so the bound can be passed by as many entries as jobs die at once.
func PutDeadLetter(ctx context.Context, rc redis.Cmdable, d DeadLetter, limit int) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode dead letter of job %s: %w", d.ID, err)
	}
	room := "1"
	if limit > 0 {
		n, err := CountDeadLetters(ctx, rc)
		if err != nil {
			return fmt.Errorf("write dead letter of job %s: %w", d.ID, err)
		}
		if n >= int64(limit) {
			room = "0"
		}
	}
	written, err := putDeadLetter.Run(ctx, rc, []string{keys.DeadLetters(d.Queue)}, keys.DeadLetterField(d.Queue, d.ID), data, room).Int()
	if err != nil {
		return fmt.Errorf("write dead letter of job %s: %w", d.ID, err)
	}
	if written == 1 {
		return RegisterQueues(ctx, rc, d.Queue)
	}
	_ = rc.Incr(ctx, keys.DeadLettersRefused).Err()
	return fmt.Errorf("%w (%d entries): job %s stays in asynq's archive only; redrive or purge dead letters "+
		"(solvequeue dlq list), or raise --dlq-limit", ErrDeadLetterFull, limit, d.ID)
}

// CountDeadLetters adds up the dead letters of every known queue, asking for all the counts in
// one pipeline (on a Cluster, one per node).
func CountDeadLetters(ctx context.Context, rc redis.Cmdable) (int64, error) {
	queues, err := KnownQueues(ctx, rc)
	if err != nil || len(queues) == 0 {
		return 0, err
	}
	lens := make([]*redis.IntCmd, len(queues))
	if _, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range queues {
			lens[i] = p.HLen(ctx, keys.DeadLetters(q))
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("count dead letters: %w", err)
	}
	var n int64
	for _, l := range lens {
		n += l.Val()
	}
	return n, nil
}

// DeadLetter is one job in the dead-letter queue, with everything needed to redrive it.
type DeadLetter struct {
	ID      string          `json:"id"`
	Queue   string          `json:"queue"`
	Payload json.RawMessage `json:"payload"`
	Record  Record          `json:"record"`
	DeadAt  time.Time       `json:"deadAt"`
	// UnreadableRecord is the job's record as the worker found it when it could not decode it
	// (the job then ends dead with RECORD_UNREADABLE instead of risking a second createTask).
	UnreadableRecord string `json:"unreadableRecord,omitempty"`
}

// Outcome is the dead job as a producer sees it.
func (d DeadLetter) Outcome() Outcome {
	r := d.Record
	out := Outcome{ID: d.ID, Queue: d.Queue, State: StateDead, Error: r.Error, Attempts: r.Attempts,
		CreateTasks: r.CreateTasks, Polls: r.Polls, Retries: r.Retries, Throttles: r.Throttles,
		Provider: r.Provider, ProvidersTried: r.ProvidersTried,
		Cost: r.Cost, FinishedAt: d.DeadAt}
	var p Payload
	if json.Unmarshal(d.Payload, &p) == nil {
		out.SubmittedAt = p.SubmittedAt
	}
	return out
}

// bodyRef is the key of the dead job's image body, or "" when it has none (or a key that is not
// a body's).
func (d DeadLetter) bodyRef() string {
	var p struct {
		BodyRef string `json:"bodyRef"`
	}
	if json.Unmarshal(d.Payload, &p) != nil || !keys.IsBody(p.BodyRef) {
		return ""
	}
	return p.BodyRef
}

// DeadLetter reads one entry; queue "" looks for the id in every queue.
func (c *Client) DeadLetter(ctx context.Context, queue, id string) (DeadLetter, error) {
	queues := []string{queue}
	if queue == "" {
		var err error
		if queues, err = c.deadLetterQueues(ctx); err != nil {
			return DeadLetter{}, err
		}
	}
	for _, q := range queues {
		raw, err := c.rc.HGet(ctx, keys.DeadLetters(q), keys.DeadLetterField(q, id)).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return DeadLetter{}, fmt.Errorf("read dead letter %s: %w", id, err)
		}
		return decodeDeadLetter(keys.DeadLetterField(q, id), raw), nil
	}
	return DeadLetter{}, fmt.Errorf("%w: %q is not in the dead-letter queue", ErrJobNotFound, id)
}

// deadLetterQueues returns the queues whose dead letters to read: every known queue.
func (c *Client) deadLetterQueues(ctx context.Context) ([]string, error) {
	return KnownQueues(ctx, c.rc)
}

// decodeDeadLetter decodes the entry under field, or describes an entry it cannot decode.
func decodeDeadLetter(field string, raw []byte) DeadLetter {
	var d DeadLetter
	if err := json.Unmarshal(raw, &d); err != nil {
		queue, id, _ := strings.Cut(field, "/")
		d = DeadLetter{ID: id, Queue: queue, Record: Record{State: StateDead,
			Error: &ErrorInfo{ErrorCode: "UNREADABLE_DEAD_LETTER", ErrorDescription: err.Error()}}}
	}
	return d
}

// DeadLetters lists the dead-letter queue of every queue, oldest first.
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	queues, err := c.deadLetterQueues(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for _, q := range queues {
		raw, err := c.rc.HGetAll(ctx, keys.DeadLetters(q)).Result()
		if err != nil {
			return nil, fmt.Errorf("read the dead-letter queue of %s: %w", q, err)
		}
		for field, v := range raw {
			out = append(out, decodeDeadLetter(field, []byte(v)))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].DeadAt.Equal(out[j].DeadAt) {
			return out[i].DeadAt.Before(out[j].DeadAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Redrive gives a dead job a fresh start: the archived asynq task (if asynq has not trimmed it)
// is deleted and a new task with the same ID and job and a fresh retry budget is enqueued
// (asynq's own "run" keeps the spent retry count). Its lifetime is fresh too: its timings count
// from the redrive, a deadline that has passed is replaced by one as long as the job first had,
// and its new outcome gets the next sequence number, so that it is called back in a delivery of
// its own whatever became of the first (see Payload.OutcomeSeq).
//
// The entry leaves the dead-letter queue first, as a claim: of two redrives of one dead letter
// (two operators, two `dlq redrive --all` runs, a stale list) exactly one goes through and the
// other gets ErrJobNotFound, so a job that was redriven, and maybe solved, meanwhile is never
// deleted and paid for again. The entry comes back if the redrive fails.
//
// A job whose image body travels under its own key needs that body still: the body gets its TTL
// (Config.BlobTTL) back, and a redrive whose body is gone is refused, the entry kept.
//
// A Redis that stops answering in the middle (a Sentinel failover) is waited for, up to
// RideOutDefault, and the redrive goes on; the entry is never lost on the way.
func (c *Client) Redrive(ctx context.Context, d DeadLetter) error {
	_, err := rideOut(ctx, c.rc, RideOutDefault, func() error { return c.redrive(ctx, d) })
	return err
}

func (c *Client) redrive(ctx context.Context, d DeadLetter) error {
	raw, err := c.claim(ctx, d)
	if err != nil {
		return fmt.Errorf("redrive %s: %w", d.ID, err)
	}
	if key := d.bodyRef(); key != "" {
		// The body was kept without a TTL while the job was dead: give it one again, and refuse
		// a redrive that could only fail for want of it.
		alive, err := c.rc.Expire(ctx, key, c.cfg.BlobTTL).Result()
		if err != nil {
			return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: image body: %w", d.ID, err))
		}
		if !alive {
			return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: its image body is gone from Redis: submit the job anew", d.ID))
		}
	}
	if err := c.inspector.DeleteTask(d.Queue, d.ID); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: remove the archived task: %w", d.ID, err))
	}
	task := asynq.NewTask(TaskType, freshStart(d.Payload, c.cfg.Now()),
		asynq.Queue(d.Queue), asynq.TaskID(d.ID), asynq.MaxRetry(AsynqMaxRetryDefault),
		asynq.Timeout(c.cfg.AttemptTimeout), asynq.Retention(c.cfg.Retention))
	if _, err := c.asynq.EnqueueContext(ctx, task); err != nil {
		if errors.Is(err, asynq.ErrTaskIDConflict) {
			// The archived task is gone and a task of this ID is in the queue: this redrive's
			// own enqueue, retried by go-redis after its answer was lost, or another's redrive.
			// Either way the job runs again; its dead letter must not come back.
			return nil
		}
		return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: enqueue: %w", d.ID, err))
	}
	return nil
}

// claim takes the job's entry out of the dead-letter queue in one step and returns it; it
// returns ErrJobNotFound when the entry is gone (redriven or purged by someone else).
func (c *Client) claim(ctx context.Context, d DeadLetter) (string, error) {
	field := keys.DeadLetterField(d.Queue, d.ID)
	var get *redis.StringCmd
	_, err := c.rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HGet(ctx, keys.DeadLetters(d.Queue), field)
		p.HDel(ctx, keys.DeadLetters(d.Queue), field)
		return nil
	})
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("%w: %q left the dead-letter queue already (redriven or purged)", ErrJobNotFound, d.ID)
	}
	if err != nil {
		return "", fmt.Errorf("take the dead letter: %w", err)
	}
	return get.Val(), nil
}

// unclaim puts a claimed entry back after a redrive or purge that did not go through, and
// returns err.
//
// The entry is put back even through an outage of Redis (up to RideOutDefault): the claim that
// took it out may have reached a replica already.
func (c *Client) unclaim(ctx context.Context, d DeadLetter, raw string, err error) error {
	ctx = context.WithoutCancel(ctx)
	waited, putErr := rideOut(ctx, c.rc, RideOutDefault, func() error {
		return c.rc.HSet(ctx, keys.DeadLetters(d.Queue), keys.DeadLetterField(d.Queue, d.ID), raw).Err()
	})
	if waited {
		err = outageError{err} // Redis was down: the caller may try again
	}
	if putErr != nil {
		return fmt.Errorf("%w (and its dead letter could not be put back: %v)", err, putErr)
	}
	return err
}

// Purge deletes dead letters for good, with their archived asynq tasks and image bodies. A
// letter that left the dead-letter queue meanwhile (redriven: its job runs again) is skipped,
// never deleted.
//
// A Redis that stops answering in the middle (a Sentinel failover) is waited for, up to
// RideOutDefault for each letter, and the purge goes on.
func (c *Client) Purge(ctx context.Context, letters []DeadLetter) (int, error) {
	n := 0
	for _, d := range letters {
		purged := false
		_, err := rideOut(ctx, c.rc, RideOutDefault, func() error {
			var err error
			purged, err = c.purge(ctx, d)
			return err
		})
		if err != nil {
			return n, err
		}
		if purged {
			n++
		}
	}
	return n, nil
}

// purge deletes one dead letter and reports whether it was there to delete.
func (c *Client) purge(ctx context.Context, d DeadLetter) (bool, error) {
	raw, err := c.claim(ctx, d)
	if errors.Is(err, ErrJobNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("purge %s: %w", d.ID, err)
	}
	if err := c.inspector.DeleteTask(d.Queue, d.ID); err != nil &&
		!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
		return false, c.unclaim(ctx, d, raw, fmt.Errorf("purge %s: %w", d.ID, err))
	}
	if key := d.bodyRef(); key != "" {
		_ = DropBody(ctx, c.rc, key) // left to its TTL, if any, when Redis refuses
	}
	return true, nil
}
