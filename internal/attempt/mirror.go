package attempt

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/loop"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/quota"
	"github.com/solvequeue/solvequeue/internal/record"
)

// MirrorIntervalDefault is how often the mirror looks for archived jobs without an entry.
const MirrorIntervalDefault = 30 * time.Second

// Mirror copies into the durable dead-letter queue any solve job that asynq archived
// without the handler (a task enqueued with a smaller MaxRetry than the worker's policy, a panic
// while an outcome was written, again and again), before asynq's archive trims it. What the job
// becomes is decide's (endedArchivedByAsynq): dead, with its last error, called back like any
// dead job.
type Mirror struct {
	deadLetterMirrorParams
	sweeper *loop.Loop
}

// MirrorParams configure a Mirror.
type MirrorParams struct {
	Redis     redis.UniversalClient
	Inspector *asynq.Inspector
	Queues    []string
	Log       *slog.Logger
	Now       func() time.Time
}

// NewMirror returns the dead-letter mirror of h's jobs: it writes their records and dead-letter
// entries, and schedules their callbacks, as h does. Start runs it.
func (h *Handler) NewMirror(p MirrorParams) *Mirror {
	return newDeadLetterMirror(deadLetterMirrorParams{rc: p.Redis, inspector: p.Inspector, queues: p.Queues,
		store: h.store, rules: h.rules, callbacks: h.callbacks, quotas: h.quotas, log: p.Log, now: p.Now})
}

type deadLetterMirrorParams struct {
	rc        redis.UniversalClient
	inspector *asynq.Inspector
	queues    []string
	store     *record.Store
	rules     rules
	callbacks *callback.Callbacks // nil: no callbacks
	quotas    *quota.Store        // the gateway keys' quotas, told when an archived job ends
	log       *slog.Logger
	now       func() time.Time
	interval  time.Duration
}

func newDeadLetterMirror(p deadLetterMirrorParams) *Mirror {
	if p.interval <= 0 {
		p.interval = MirrorIntervalDefault
	}
	if p.quotas == nil {
		p.quotas = quota.New(p.rc)
	}
	return &Mirror{deadLetterMirrorParams: p}
}

// Start sweeps every interval until Shutdown.
func (m *Mirror) Start(ctx context.Context) {
	m.sweeper = loop.Every(ctx, m.interval, false, func(ctx context.Context) { m.sweep(ctx) })
}

// Shutdown stops the sweeps and waits for the one under way.
func (m *Mirror) Shutdown() { m.sweeper.Stop() }

// sweep mirrors archived solve jobs that have no dead-letter entry yet.
func (m *Mirror) sweep(ctx context.Context) int {
	_ = queuereg.Register(ctx, m.rc, m.queues...)
	n := 0
	for _, q := range m.queues {
		for page := 1; ; page++ {
			tasks, err := m.inspector.ListArchivedTasks(q, asynq.PageSize(500), asynq.Page(page))
			if err != nil || len(tasks) == 0 {
				break
			}
			n += m.mirrorMissing(ctx, q, tasks)
			if len(tasks) < 500 {
				break
			}
		}
	}
	if n > 0 {
		m.log.Warn("mirrored archived jobs into the dead-letter queue", "count", n)
	}
	return n
}

// mirrorMissing adds the solve jobs of one page of archived tasks that have no dead-letter entry,
// asking Redis about the whole page in one HMGET.
func (m *Mirror) mirrorMissing(ctx context.Context, queue string, tasks []*asynq.TaskInfo) int {
	var solve []*asynq.TaskInfo
	var fields []string
	for _, t := range tasks {
		if t.Type == jobwire.TaskType {
			solve = append(solve, t)
			fields = append(fields, keys.DeadLetterField(queue, t.ID))
		}
	}
	if len(fields) == 0 {
		return 0
	}
	have, err := m.rc.HMGet(ctx, keys.DeadLetters(queue), fields...).Result()
	if err != nil {
		return 0
	}
	n := 0
	for i, t := range solve {
		if have[i] != nil {
			continue
		}
		a := &attempt{id: t.ID, queue: queue, raw: t.Payload}
		a.payload, _ = jobwire.DecodePayload(t.Payload)
		e := ending{kind: endedArchivedByAsynq, what: t.LastErr}
		rec, err := jobwire.DecodeRecord(t.Result)
		if err != nil && len(t.Result) > 0 {
			e = ending{kind: endedUnreadableRecord, err: err, raw: t.Result}
		}
		tr := decide(m.rules, decideInput{record: rec, payload: a.payload, ending: e, now: m.now()})
		if !tr.DeadLetter {
			continue // its recorded outcome (solved or failed) stands; nothing to redrive
		}
		if tr.Write {
			if err := m.store.Save(ctx, queue, t.ID, &tr.Record); err != nil {
				m.log.Warn("could not mark an archived job dead in its record", "job_id", t.ID, "queue", queue, "err", err)
			}
		}
		// The callback goes first, as the handler's apply queues it: a dead letter without its
		// callback queued would lose it to a redrive or a purge, while a job left without an
		// entry is tried again at the next sweep.
		if m.callbacks != nil {
			if err := scheduleCallback(ctx, m.callbacks, a, tr); err != nil {
				m.log.Warn("could not queue the callback of an archived job; trying again at the next sweep", "job_id", t.ID, "err", err)
				continue
			}
		}
		err = m.store.AddDeadLetter(ctx, queue, t.ID, t.Payload, tr.Record, tr.RawRecord, m.now())
		if errors.Is(err, deadletter.ErrFull) {
			// Never a silent trim: the rest stay in asynq's archive until an operator makes room.
			m.log.Error("the dead-letter queue is full: archived jobs stay in asynq's archive only "+
				"(redrive or purge dead letters, or raise --dlq-limit)", "queue", queue, "err", err)
			return n
		}
		if err != nil {
			continue
		}
		n++
		m.log.Warn("asynq archived a job by itself; it is in the dead-letter queue now", "job_id", t.ID, "queue", queue,
			"code", tr.Record.Error.ErrorCode, "asynq_error", t.LastErr)
		quotaEnded(ctx, m.quotas, a, m.log)
		// A dead letter keeps its image body for a redrive (Purge deletes it).
		if ref := a.payload.BodyRef; ref != "" {
			_ = imagebody.Keep(ctx, m.rc, ref)
		}
	}
	return n
}
