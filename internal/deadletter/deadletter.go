// Package deadletter stores the dead-letter queue: one Redis hash per queue holding, for each job
// that needs an operator, everything needed to redrive it (its payload and record). The worker
// writes it (Put, bounded); the producer reads a dead job's outcome from it (Get); the operator's
// API (enqueue/admin) lists, redrives and purges it.
package deadletter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// LimitDefault is the default bound on the number of dead letters (the worker's
// --dlq-limit): as many as asynq keeps in one queue's archive.
const LimitDefault = 10_000

// ErrFull is returned (wrapped) by Put when the dead-letter queue holds its
// limit of entries.
var ErrFull = errors.New("the dead-letter queue is full")

// putDeadLetter writes a dead letter into its queue's hash (KEYS[1]) when there is room (ARGV[3]
// is "1") or the entry is there already (a redelivered dead job rewrites its own). It returns 1
// when written.
var putDeadLetter = redis.NewScript(`
if ARGV[3] == '1' or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0`)

// Put writes d into the dead-letter queue, bounded by limit entries in all (0: no
// bound). The queue is never trimmed to make room: at the limit the new entry is refused, counted
// under keys.DeadLettersRefused, and ErrFull returned, so that the caller says so loudly;
// the job itself stays in asynq's archive, where the web UI shows it. The entries already there
// are kept whole until an operator redrives or purges them. Rewriting an entry that is already
// there (a redelivered dead job) always succeeds.
//
// The bound counts every queue's entries (Count) before the write, which goes to the
// job's queue's hash alone: on a Redis Cluster the queues' hashes are on different slots, so no
// one script can count and write. Jobs dying at the same moment may each find the last free room,
// so the bound can be passed by as many entries as jobs die at once.
func Put(ctx context.Context, rc redis.Cmdable, d Letter, limit int) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode dead letter of job %s: %w", d.ID, err)
	}
	room := "1"
	if limit > 0 {
		n, err := Count(ctx, rc)
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
		return queuereg.Register(ctx, rc, d.Queue)
	}
	_ = rc.Incr(ctx, keys.DeadLettersRefused).Err()
	return fmt.Errorf("%w (%d entries): job %s stays in asynq's archive only; redrive or purge dead letters "+
		"(solvequeue dlq list), or raise --dlq-limit", ErrFull, limit, d.ID)
}

// Count adds up the dead letters of every known queue, asking for all the counts in
// one pipeline (on a Cluster, one per node).
func Count(ctx context.Context, rc redis.Cmdable) (int64, error) {
	queues, err := queuereg.Known(ctx, rc)
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

// Letter is one job in the dead-letter queue, with everything needed to redrive it.
type Letter struct {
	ID      string          `json:"id"`
	Queue   string          `json:"queue"`
	Payload json.RawMessage `json:"payload"`
	Record  jobwire.Record  `json:"record"`
	DeadAt  time.Time       `json:"deadAt"`
	// UnreadableRecord is the job's record as the worker found it when it could not decode it
	// (the job then ends dead with RECORD_UNREADABLE instead of risking a second createTask).
	UnreadableRecord string `json:"unreadableRecord,omitempty"`
}

// Outcome is the dead job as a producer sees it.
func (d Letter) Outcome() jobwire.Outcome {
	r := d.Record
	out := jobwire.Outcome{ID: d.ID, Queue: d.Queue, State: jobwire.StateDead, Error: r.Error, Attempts: r.Attempts,
		CreateTasks: r.CreateTasks, Polls: r.Polls, Retries: r.Retries, Throttles: r.Throttles,
		Provider: r.Provider, ProvidersTried: r.ProvidersTried,
		Cost: r.Cost, FinishedAt: d.DeadAt}
	var p jobwire.Payload
	if json.Unmarshal(d.Payload, &p) == nil {
		out.SubmittedAt = p.SubmittedAt
	}
	return out
}

// BodyRef is the key of the dead job's image body, or "" when it has none (or a key that is not
// a body's).
func (d Letter) BodyRef() string {
	var p struct {
		BodyRef string `json:"bodyRef"`
	}
	if json.Unmarshal(d.Payload, &p) != nil || !keys.IsBody(p.BodyRef) {
		return ""
	}
	return p.BodyRef
}

// Get reads one entry; queue "" looks for the id in every queue.
func Get(ctx context.Context, rc redis.Cmdable, queue, id string) (Letter, error) {
	queues := []string{queue}
	if queue == "" {
		var err error
		if queues, err = queuereg.Known(ctx, rc); err != nil {
			return Letter{}, err
		}
	}
	for _, q := range queues {
		raw, err := rc.HGet(ctx, keys.DeadLetters(q), keys.DeadLetterField(q, id)).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return Letter{}, fmt.Errorf("read dead letter %s: %w", id, err)
		}
		return decode(keys.DeadLetterField(q, id), raw), nil
	}
	return Letter{}, fmt.Errorf("%w: %q is not in the dead-letter queue", jobwire.ErrJobNotFound, id)
}

// decode decodes the entry under field, or describes an entry it cannot decode.
func decode(field string, raw []byte) Letter {
	var d Letter
	if err := json.Unmarshal(raw, &d); err != nil {
		queue, id, _ := strings.Cut(field, "/")
		d = Letter{ID: id, Queue: queue, Record: jobwire.Record{State: jobwire.StateDead,
			Error: &jobwire.ErrorInfo{ErrorCode: "UNREADABLE_DEAD_LETTER", ErrorDescription: err.Error()}}}
	}
	return d
}

// List lists the dead-letter queue of every queue, oldest first.
func List(ctx context.Context, rc redis.Cmdable) ([]Letter, error) {
	queues, err := queuereg.Known(ctx, rc)
	if err != nil {
		return nil, err
	}
	var out []Letter
	for _, q := range queues {
		raw, err := rc.HGetAll(ctx, keys.DeadLetters(q)).Result()
		if err != nil {
			return nil, fmt.Errorf("read the dead-letter queue of %s: %w", q, err)
		}
		for field, v := range raw {
			out = append(out, decode(field, []byte(v)))
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
