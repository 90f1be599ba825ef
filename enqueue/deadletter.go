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
)

// DeadLetterKey is the Redis hash of the durable dead-letter queue: field "queue/id", value a
// JSON DeadLetter. Unlike asynq's archive (trimmed silently at 10,000 tasks per queue and after
// 90 days) nothing trims it: an entry leaves by a redrive or a purge.
const DeadLetterKey = "solvequeue:dlq"

// DeadLetterRefusedKey counts the dead letters PutDeadLetter refused because the dead-letter
// queue was full (a Redis counter shared by every worker; it only grows).
const DeadLetterRefusedKey = "solvequeue:dlq:refused"

// DeadLetterLimitDefault is the default bound on the number of dead letters (the worker's
// --dlq-limit): as many as asynq keeps in one queue's archive.
const DeadLetterLimitDefault = 10_000

// ErrDeadLetterFull is returned (wrapped) by PutDeadLetter when the dead-letter queue holds its
// limit of entries.
var ErrDeadLetterFull = errors.New("the dead-letter queue is full")

// putDeadLetter writes a dead letter unless the hash holds ARGV[3] entries already (0: no
// limit); replacing an entry that is there is always allowed. It returns 1 when written.
var putDeadLetter = redis.NewScript(`
local limit = tonumber(ARGV[3])
if limit <= 0 or redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 or redis.call('HLEN', KEYS[1]) < limit then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  return 1
end
return 0`)

// PutDeadLetter writes d into the dead-letter queue, bounded by limit entries (0: no bound). The
// queue is never trimmed to make room: at the limit the new entry is refused, counted under
// DeadLetterRefusedKey, and ErrDeadLetterFull returned, so that the caller says so loudly; the
// job itself stays in asynq's archive, where the web UI shows it. The entries already there are
// kept whole until an operator redrives or purges them. Rewriting an entry that is already
// there (a redelivered dead job) always succeeds.
func PutDeadLetter(ctx context.Context, rc redis.Cmdable, d DeadLetter, limit int) error {
	data, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode dead letter of job %s: %w", d.ID, err)
	}
	written, err := putDeadLetter.Run(ctx, rc, []string{DeadLetterKey}, DeadLetterField(d.Queue, d.ID), data, limit).Int()
	if err != nil {
		return fmt.Errorf("write dead letter of job %s: %w", d.ID, err)
	}
	if written == 1 {
		return nil
	}
	_ = rc.Incr(ctx, DeadLetterRefusedKey).Err()
	return fmt.Errorf("%w (%d entries): job %s stays in asynq's archive only; redrive or purge dead letters "+
		"(solvequeue dlq list), or raise --dlq-limit", ErrDeadLetterFull, limit, d.ID)
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

// DeadLetterField is the hash field of a job in DeadLetterKey.
func DeadLetterField(queue, id string) string { return queue + "/" + id }

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
	if json.Unmarshal(d.Payload, &p) != nil || !IsBodyRef(p.BodyRef) {
		return ""
	}
	return p.BodyRef
}

// DeadLetter reads one entry; queue "" searches every entry for the id.
func (c *Client) DeadLetter(ctx context.Context, queue, id string) (DeadLetter, error) {
	if queue != "" {
		raw, err := c.rc.HGet(ctx, DeadLetterKey, DeadLetterField(queue, id)).Bytes()
		if errors.Is(err, redis.Nil) {
			return DeadLetter{}, fmt.Errorf("%w: %q is not in the dead-letter queue", ErrJobNotFound, id)
		}
		if err != nil {
			return DeadLetter{}, fmt.Errorf("read dead letter %s: %w", id, err)
		}
		var d DeadLetter
		return d, json.Unmarshal(raw, &d)
	}
	all, err := c.DeadLetters(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	for _, d := range all {
		if d.ID == id {
			return d, nil
		}
	}
	return DeadLetter{}, fmt.Errorf("%w: %q is not in the dead-letter queue", ErrJobNotFound, id)
}

// DeadLetters lists the dead-letter queue, oldest first.
func (c *Client) DeadLetters(ctx context.Context) ([]DeadLetter, error) {
	raw, err := c.rc.HGetAll(ctx, DeadLetterKey).Result()
	if err != nil {
		return nil, fmt.Errorf("read the dead-letter queue: %w", err)
	}
	out := make([]DeadLetter, 0, len(raw))
	for field, v := range raw {
		var d DeadLetter
		if err := json.Unmarshal([]byte(v), &d); err != nil {
			queue, id, _ := strings.Cut(field, "/")
			d = DeadLetter{ID: id, Queue: queue, Record: Record{State: StateDead,
				Error: &ErrorInfo{ErrorCode: "UNREADABLE_DEAD_LETTER", ErrorDescription: err.Error()}}}
		}
		out = append(out, d)
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
// is deleted and a new task with the same ID, payload and a fresh retry budget is enqueued
// (asynq's own "run" keeps the spent retry count).
//
// The entry leaves the dead-letter queue first, as a claim: of two redrives of one dead letter
// (two operators, two `dlq redrive --all` runs, a stale list) exactly one goes through and the
// other gets ErrJobNotFound, so a job that was redriven, and maybe solved, meanwhile is never
// deleted and paid for again. The entry comes back if the redrive fails.
//
// A job whose image body travels under its own key needs that body still: the body gets its TTL
// (Config.BlobTTL) back, and a redrive whose body is gone is refused, the entry kept.
func (c *Client) Redrive(ctx context.Context, d DeadLetter) error {
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
	task := asynq.NewTask(TaskType, d.Payload,
		asynq.Queue(d.Queue), asynq.TaskID(d.ID), asynq.MaxRetry(AsynqMaxRetryDefault),
		asynq.Timeout(c.cfg.AttemptTimeout), asynq.Retention(c.cfg.Retention))
	if _, err := c.asynq.EnqueueContext(ctx, task); err != nil {
		return c.unclaim(ctx, d, raw, fmt.Errorf("redrive %s: enqueue: %w (is the job running again already?)", d.ID, err))
	}
	return nil
}

// claim takes the job's entry out of the dead-letter queue in one step and returns it; it
// returns ErrJobNotFound when the entry is gone (redriven or purged by someone else).
func (c *Client) claim(ctx context.Context, d DeadLetter) (string, error) {
	field := DeadLetterField(d.Queue, d.ID)
	var get *redis.StringCmd
	_, err := c.rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
		get = p.HGet(ctx, DeadLetterKey, field)
		p.HDel(ctx, DeadLetterKey, field)
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
func (c *Client) unclaim(ctx context.Context, d DeadLetter, raw string, err error) error {
	if putErr := c.rc.HSet(context.WithoutCancel(ctx), DeadLetterKey, DeadLetterField(d.Queue, d.ID), raw).Err(); putErr != nil {
		return fmt.Errorf("%w (and its dead letter could not be put back: %v)", err, putErr)
	}
	return err
}

// Purge deletes dead letters for good, with their archived asynq tasks and image bodies. A
// letter that left the dead-letter queue meanwhile (redriven: its job runs again) is skipped,
// never deleted.
func (c *Client) Purge(ctx context.Context, letters []DeadLetter) (int, error) {
	n := 0
	for _, d := range letters {
		raw, err := c.claim(ctx, d)
		if errors.Is(err, ErrJobNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("purge %s: %w", d.ID, err)
		}
		if err := c.inspector.DeleteTask(d.Queue, d.ID); err != nil &&
			!errors.Is(err, asynq.ErrTaskNotFound) && !errors.Is(err, asynq.ErrQueueNotFound) {
			return n, c.unclaim(ctx, d, raw, fmt.Errorf("purge %s: %w", d.ID, err))
		}
		if key := d.bodyRef(); key != "" {
			_ = DropBody(ctx, c.rc, key) // left to its TTL, if any, when Redis refuses
		}
		n++
	}
	return n, nil
}
