// Package attempt is the worker's attempt machine: one run of the solve handler is one attempt of
// one job (create or resume the paid remote task, poll it, record the outcome), and what the
// attempt ends in is decided by one pure function (decide) and performed by one (apply). It also
// holds the waits between polls, the spend caps' reservations and the dead-letter mirror, which
// ends the jobs asynq archived by itself the same way.
//
// It does not classify AnySolver's errors (package classify does), run the asynq server (package
// worker does) nor keep the records, the breakers, the polling statistics or callback delivery
// (packages record, breaker, poll and callback).
package attempt

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/fairshare"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/poll"
	"github.com/solvequeue/solvequeue/internal/quota"
	"github.com/solvequeue/solvequeue/internal/record"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// Params configure a Handler.
type Params struct {
	Redis     redis.UniversalClient
	AnySolver *anysolver.Client
	Policy    *policyfile.Policy
	// Lifetime bounds the throttling of a job that has no deadline of its own.
	Lifetime time.Duration
	// HoldWait is the least wait of a job held by an open breaker (the breaker's ProbeMin).
	HoldWait time.Duration
	Poll     poll.Config
	// RemoteTTL is how long AnySolver keeps a task's result.
	RemoteTTL time.Duration
	// DeadLetterLimit bounds the durable dead-letter queue; a negative value means no bound.
	DeadLetterLimit int
	Budgets         *ledger.Ledger
	Providers       *breaker.Providers
	Breaker         *breaker.Breaker    // nil: the account breaker is off
	Callbacks       *callback.Callbacks // nil: no callbacks
	// Share is the worker's fair share of its slots between gateway keys (package fairshare);
	// nil admits every job.
	Share    *fairshare.Share
	Observer metrics.Observer
	Log      *slog.Logger
	Now      func() time.Time
}

// New returns the solve handler p describes.
func New(p Params) *Handler {
	st := record.New(p.Redis)
	st.DeadLetterLimit = max(p.DeadLetterLimit, 0) // negative: no bound
	h := &Handler{rules: rules{policy: p.Policy.Classification(), lifetime: p.Lifetime, holdWait: p.HoldWait,
		pollInterval: p.Poll.WithDefaults().Interval}, budgets: p.Budgets, policy: p.Policy,
		providers: p.Providers, anysolver: p.AnySolver, store: st, poller: poll.New(p.Poll),
		breaker: p.Breaker, observer: p.Observer, log: p.Log, now: p.Now, jitter: rand.Float64,
		remoteTTL: p.RemoteTTL, steps: newSteps(p.AnySolver.MaxConnsPerHost()), callbacks: p.Callbacks,
		share: p.Share, quotas: quota.New(p.Redis)}
	h.waits = newWaits(waitWatchEvery, h.fire, h.cancelWait)
	return h
}

// Running is how many attempts are in progress.
func (h *Handler) Running() int { return h.running.count() }

// Drain returns nil once no attempt is in progress, or ctx's error if it ends first.
func (h *Handler) Drain(ctx context.Context) error { return h.running.wait(ctx) }

// RetryDelayFunc is asynq's Config.RetryDelayFunc for h's jobs (see retryDelayFunc), with jitter
// drawn from jitter.
func (h *Handler) RetryDelayFunc(jitter func() float64) asynq.RetryDelayFunc {
	return retryDelayFunc(h.rules, jitter)
}

// IsFailure is asynq's Config.IsFailure: whether asynq counts err against the task's retries
// (see isFailure).
func IsFailure(err error) bool { return isFailure(err) }

// ProcessAs runs one attempt of t as asynq's retry number retried of a task with the given id,
// queue and MaxRetry: a test runs an attempt with it without a server.
func (h *Handler) ProcessAs(ctx context.Context, id, queue string, retried, maxRetry int, t *asynq.Task) error {
	return h.process(ctx, taskMeta{id: id, queue: queue, retried: retried, maxRetry: maxRetry}, t)
}

// Waiting is how many attempts wait for their next poll.
func (h *Handler) Waiting() int { return h.waits.waitingCount() }

// waitingCount is how many attempts wait for their next poll.
func (w *waits) waitingCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for a := w.head; a != nil; a = a.nextWait {
		n++
	}
	return n
}
