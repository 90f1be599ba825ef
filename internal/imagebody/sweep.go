package imagebody

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/loop"
)

// Sweeper defaults.
const (
	// SweepIntervalDefault is how often a worker looks for orphaned image bodies.
	SweepIntervalDefault = 5 * time.Minute
	// SweepGraceDefault is how long a body must have been orphaned, seen by two sweeps, before it
	// goes: far longer than Submit takes between writing a body and enqueueing its task.
	SweepGraceDefault = 10 * time.Minute
	// SweepBatchDefault is how many keys one SCAN call asks for.
	SweepBatchDefault = 200
	// SweepPauseDefault is the pause between two SCAN calls, which bounds the sweep's load on Redis.
	SweepPauseDefault = 50 * time.Millisecond
	// sweepMarksMax bounds the orphans remembered between sweeps; more wait for a later sweep.
	sweepMarksMax = 100_000
)

// SweeperParams configures a Sweeper.
type SweeperParams struct {
	Redis    redis.UniversalClient // the workers' Redis; a *redis.ClusterClient is scanned per queue on its queue's shard
	Queues   []string              // the job queues whose bodies are swept
	Interval time.Duration         // between sweeps; 0 is SweepIntervalDefault
	Grace    time.Duration         // how long a body stays orphaned before it goes; 0 is SweepGraceDefault
	Batch    int64                 // SCAN's COUNT; 0 is SweepBatchDefault
	Pause    time.Duration         // between SCAN calls; 0 is SweepPauseDefault
	Log      *slog.Logger
	Now      func() time.Time
}

// Sweeper deletes image bodies whose job is gone from asynq in every state and from the
// dead-letter queue: a task deleted in asynqmon, an archived task trimmed by asynq, a retained
// task expired. A body is deleted only once two sweeps at least Grace apart found it orphaned, so
// a body written just before its task is enqueued is never taken, and the delete itself checks
// again, atomically, that neither the task nor the dead letter exists. Bodies are keyed by their
// queue's hash tag, so each queue is scanned on the one shard that holds it.
type Sweeper struct {
	p      SweeperParams
	orphan map[string]time.Time // body key → when a sweep first found it orphaned
	loop   *loop.Loop
}

// NewSweeper returns a Sweeper; Start runs it.
func NewSweeper(p SweeperParams) *Sweeper {
	if p.Interval <= 0 {
		p.Interval = SweepIntervalDefault
	}
	if p.Grace <= 0 {
		p.Grace = SweepGraceDefault
	}
	if p.Batch <= 0 {
		p.Batch = SweepBatchDefault
	}
	if p.Pause <= 0 {
		p.Pause = SweepPauseDefault
	}
	if p.Log == nil {
		p.Log = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Sweeper{p: p, orphan: map[string]time.Time{}}
}

// Start sweeps every Interval in a goroutine of its own until ctx ends or Shutdown.
func (s *Sweeper) Start(ctx context.Context) {
	s.loop = loop.Every(ctx, s.p.Interval, false, func(ctx context.Context) {
		if n, err := s.Sweep(ctx); err != nil {
			s.p.Log.Warn("image body sweep stopped early; the next one goes on", "deleted", n, "err", err)
		} else if n > 0 {
			s.p.Log.Info("deleted image bodies whose job is gone", "bodies", n)
		}
	})
}

// Shutdown stops the loop, waiting for a sweep under way.
func (s *Sweeper) Shutdown() { s.loop.Stop() }

// deleteOrphan deletes a body while neither its task (KEYS[2]) nor its dead letter (KEYS[3],
// field ARGV[1]) exists: one script, so a job enqueued meanwhile keeps it. All three keys carry
// the queue's hash tag.
var deleteOrphan = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 or redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  return 0
end
return redis.call('DEL', KEYS[1])
`)

// Sweep runs one pass over every queue and returns how many bodies it deleted. It is not safe for
// concurrent use: one Sweeper runs one pass at a time.
func (s *Sweeper) Sweep(ctx context.Context) (int, error) {
	now := s.p.Now()
	seen := map[string]bool{}
	deleted := 0
	for _, q := range s.p.Queues {
		n, err := s.sweepQueue(ctx, q, now, seen)
		deleted += n
		if err != nil {
			return deleted, fmt.Errorf("sweep the image bodies of queue %s: %w", q, err)
		}
	}
	for key := range s.orphan {
		if !seen[key] {
			delete(s.orphan, key) // gone, or its job came back
		}
	}
	return deleted, nil
}

// sweepQueue scans one queue's bodies on the node that holds its slot.
func (s *Sweeper) sweepQueue(ctx context.Context, q string, now time.Time, seen map[string]bool) (int, error) {
	var node redis.Cmdable = s.p.Redis
	if cc, ok := s.p.Redis.(*redis.ClusterClient); ok {
		c, err := cc.MasterForKey(ctx, keys.BodyQueuePrefix(q))
		if err != nil {
			return 0, err
		}
		node = c
	}
	deleted := 0
	var cursor uint64
	for {
		batch, next, err := node.Scan(ctx, cursor, keys.BodyQueuePrefix(q)+"*", s.p.Batch).Result()
		if err != nil {
			return deleted, err
		}
		n, err := s.sweepBatch(ctx, q, batch, now, seen)
		deleted += n
		if err != nil {
			return deleted, err
		}
		if cursor = next; cursor == 0 {
			return deleted, nil
		}
		if err := loop.Sleep(ctx, s.p.Pause); err != nil {
			return deleted, err
		}
	}
}

// sweepBatch checks one SCAN batch in one round trip and deletes the bodies orphaned for Grace.
func (s *Sweeper) sweepBatch(ctx context.Context, q string, batch []string, now time.Time, seen map[string]bool) (int, error) {
	type body struct{ key, job string }
	var bodies []body
	for _, key := range batch {
		if job, ok := keys.BodyJob(q, key); ok {
			bodies = append(bodies, body{key, job})
		}
	}
	if len(bodies) == 0 {
		return 0, nil
	}
	task := make([]*redis.IntCmd, len(bodies))
	letter := make([]*redis.BoolCmd, len(bodies))
	_, err := s.p.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, b := range bodies {
			task[i] = p.Exists(ctx, keys.AsynqTask(q, b.job))
			letter[i] = p.HExists(ctx, keys.DeadLetters(q), keys.DeadLetterField(q, b.job))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	deleted := 0
	for i, b := range bodies {
		if task[i].Val() > 0 || letter[i].Val() {
			continue
		}
		seen[b.key] = true
		since, marked := s.orphan[b.key]
		if !marked {
			if len(s.orphan) < sweepMarksMax {
				s.orphan[b.key] = now
			}
			continue
		}
		if now.Sub(since) < s.p.Grace {
			continue
		}
		n, err := deleteOrphan.Run(ctx, s.p.Redis, []string{b.key, keys.AsynqTask(q, b.job), keys.DeadLetters(q)},
			keys.DeadLetterField(q, b.job)).Int()
		if err != nil {
			return deleted, err
		}
		deleted += n
		delete(s.orphan, b.key)
	}
	return deleted, nil
}
