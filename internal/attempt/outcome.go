package attempt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/metrics"
)

// end decides what an attempt's ending does to the job and does it: the one way every attempt
// leaves the handler.
func (h *Handler) end(ctx context.Context, a *attempt, e ending) error {
	return h.apply(ctx, a, h.decide(a, e))
}

// decide is decide for the attempt as it stands now.
func (h *Handler) decide(a *attempt, e ending) Transition {
	return decide(h.rules, decideInput{record: a.rec, payload: a.payload, ending: e,
		providers: breaker.ProvidersOf(a.payload, a.queue, h.policy), retried: a.retried, maxRetry: a.maxRetry,
		now: h.now(), jitter: h.jitter()})
}

// apply performs a transition: the record, the callback delivery, the durable dead-letter entry,
// the metrics and the log line, in that order, and returns what asynq is told. A terminal record,
// its callback and a dead letter must land before asynq hears of the outcome; if one cannot be
// written, asynq gets the job back and its next run replays the recorded outcome.
//
// The callback is queued before the dead letter because a dead letter is what an operator
// redrives or purges, and both delete the job's task: a worker that died between the two writes
// would otherwise leave a dead letter whose outcome is never called back, its task (the one
// whose replay queues the callback) gone. So a dead letter always has its callback queued.
func (h *Handler) apply(ctx context.Context, a *attempt, t Transition) error {
	if t.Write {
		save := h.store.Save
		if t.Acked {
			save = h.store.SaveAcked
		}
		err := save(ctx, a.queue, a.id, &t.Record)
		h.announceBreaker(a)
		if err != nil {
			if t.State.Terminal() {
				// The outcome goes on being written in the background, so that the job's next
				// run (once Redis answers) finds it and ends as recorded rather than paying
				// again: an image answered at once by createTask has no remote task to resume.
				h.keepSaving(a.queue, a.id, t.Record, h.now().Add(terminalSaveWindow))
				return h.handBack(a, err)
			}
			// A retry's record is best effort: the remote task it may name was saved before
			// polling, and the next attempt finds it either way.
			h.log.Error("could not save job record", "job_id", a.id, "err", err)
		}
	}
	h.announceBreaker(a)
	if h.callbacks != nil { // queue the job's callback before its dead letter, and before asynq hears it ended
		if err := scheduleCallback(ctx, h.callbacks, a, t); err != nil {
			return h.handBack(a, err)
		}
	}
	if t.DeadLetter {
		err := h.store.AddDeadLetter(ctx, a.queue, a.id, a.raw, t.Record, t.RawRecord, h.now())
		switch {
		case errors.Is(err, deadletter.ErrFull):
			// Never a silent trim: the job goes to asynq's archive only, said loudly; the
			// mirror copies it in once an operator made room.
			h.log.Error("the dead-letter queue is full: the dead job stays in asynq's archive only "+
				"(redrive or purge dead letters, or raise --dlq-limit)", "job_id", a.id, "queue", a.queue, "err", err)
		case err != nil:
			// Without its durable entry the job must not leave: asynq retries it and the
			// replay writes the entry.
			return h.handBack(a, err)
		}
	}
	if t.State.Terminal() && (t.Report == reportEnded || t.Report == reportRedelivered) {
		quotaEnded(ctx, h.quotas, a, h.log) // a replay too: the first run's word may not have landed
	}
	if ref := a.payload.BodyRef; ref != "" && t.State.Terminal() && t.Report == reportEnded {
		if err := h.store.SettleBody(ctx, ref, t.State); err != nil {
			h.log.Warn("could not delete (or keep, for a dead job) the job's image body", "job_id", a.id, "err", err)
		}
	}
	h.report(ctx, a, t)
	return t.asynqError()
}

// terminalSaveWindow is how long an outcome whose save failed goes on being written in the
// background.
const terminalSaveWindow = time.Hour

// handBack is what asynq is told when Redis trouble kept an outcome from landing: the job is
// handed back as interrupted (decide's row for it, no retry spent), and its next run replays
// the recorded outcome or finishes the attempt's work again.
func (h *Handler) handBack(a *attempt, err error) error {
	return h.decide(a, ending{kind: endedInterrupted, err: err}).asynqError()
}

// announceBreaker announces the opening of the account breaker by the attempt's error, once: apply
// calls it when the outcome of the job that opened it is written, so that a failover right after
// the announcement keeps both.
func (h *Handler) announceBreaker(a *attempt) {
	if news := a.breakerNews; news != nil && h.breaker != nil {
		a.breakerNews = nil
		h.breaker.Announce(*news)
	}
}

// asynqError is the transition as asynq sees it: nil completes the task (its record kept for the
// retention time); anything else is an *attemptError, which IsFailure and RetryDelayFunc read,
// wrapping SkipRetry when the task is to be archived. This is the only place SkipRetry is used.
func (t Transition) asynqError() error {
	switch {
	case t.Archive:
		return fmt.Errorf("%w: %w", &attemptError{t}, asynq.SkipRetry)
	case t.State == enqueue.StateRetrying || t.HandBack != nil:
		return &attemptError{t}
	default:
		return nil
	}
}

// attemptError carries a transition to asynq's retry accounting. Its text is what asynq stores
// as the task's error message (shown in the web UI): the decision, the code and the description.
type attemptError struct{ t Transition }

func (e *attemptError) Error() string {
	if e.t.HandBack != nil {
		return e.t.HandBack.Error()
	}
	c := e.t.Cause
	if c == nil {
		return string(e.t.State)
	}
	return fmt.Sprintf("%s: %s (errorId %d): %s", c.Decision, c.ErrorCode, c.ErrorID, c.ErrorDescription)
}

// Unwrap gives errors.Is and errors.As the cause of a hand-back (a canceled context, a Redis error).
func (e *attemptError) Unwrap() error { return e.t.HandBack }

// isFailure is asynq's Config.IsFailure: an attempt that does not spend the retry budget (a
// throttle, a hold, a hand-back) is not a failure, so asynq retries it without counting it.
//
// Only decide spends retries. asynq archives a task by itself once its retries reach its
// MaxRetry, whatever the error, so an ending that decide did not see (a lost lease after a
// crash, asynq's own timeout or cancel) must not count: decide ends the job one retry before
// asynq's limit (rules.budget), and asynq never gets there. A panic that escaped the attempt's
// own recovery (in the writing of an outcome) still counts, so that a job that always does
// that ends, archived, where the dead-letter mirror finds it (endedArchivedByAsynq).
func isFailure(err error) bool {
	var e *attemptError
	switch {
	case errors.As(err, &e):
		return e.t.SpendsRetry
	case errors.Is(err, asynq.ErrLeaseExpired), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	default:
		return true
	}
}

// retryDelayFunc is asynq's Config.RetryDelayFunc. A transition carries its own delay; a lease
// recovered after a worker crash comes back at once so that its paid remote task is resumed
// while AnySolver still keeps it; anything else (a panic) backs off like a retry.
func retryDelayFunc(r rules, jitter func() float64) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var e *attemptError
		switch {
		case errors.As(err, &e):
			return notEarly(time.Now(), e.t.Delay, jitter())
		case errors.Is(err, asynq.ErrLeaseExpired):
			return notEarly(time.Now(), time.Second, 0)
		default:
			return notEarly(time.Now(), r.policy.RetryDelay(n, jitter()), jitter())
		}
	}
}

// notEarly stretches d so that now+d falls on a whole second. asynq keeps the time of the next
// try in whole seconds, rounded down, so a delay it is given comes up to a second early: a 1 s
// retry at once, RATE_LIMITED's 5 s wait in 4. On a whole second nothing is rounded away.
//
// Rounding up alone would undo the jitter of jobs that failed together: a first retry's 1-2 s,
// asked for just after a whole second, lands on one and the same second for nearly all of them,
// and they come back in lockstep. So d is first stretched by dither (in [0, 1)) of a second,
// which spreads them over two or three whole seconds. The stretch is under two seconds.
func notEarly(now time.Time, d time.Duration, dither float64) time.Duration {
	d += time.Duration(classify.ClampJitter(dither) * float64(time.Second))
	at := now.Add(d)
	if frac := at.Sub(at.Truncate(time.Second)); frac > 0 {
		d += time.Second - frac
	}
	return d
}

// report counts and logs a transition.
func (h *Handler) report(ctx context.Context, a *attempt, t Transition) {
	switch t.Report {
	case reportEnded:
		code := ""
		if t.Cause != nil {
			code = t.Cause.ErrorCode
		}
		end := metrics.JobEnd{ID: a.id, Queue: a.queue, TaskType: a.payload.TaskType(), State: t.State, Code: code,
			Attempts: t.Record.Attempts, CreateTasks: t.Record.CreateTasks, Polls: t.Record.Polls, Cost: t.Record.Cost,
			SolveTime: a.solveTime}
		if !a.payload.SubmittedAt.IsZero() {
			end.EndToEnd = t.Record.FinishedAt.Sub(a.payload.SubmittedAt)
		}
		h.observer.JobEnded(end)
		level := slog.LevelInfo
		if t.State == enqueue.StateDead {
			level = slog.LevelWarn
		}
		h.log.Log(ctx, level, "job ended", "job_id", a.id, "queue", a.queue, "state", t.State, "code", code,
			"attempts", t.Record.Attempts, "create_tasks", t.Record.CreateTasks, "polls", t.Record.Polls,
			"took", end.EndToEnd.Round(time.Millisecond))
	case reportRescheduled:
		h.observer.AttemptRescheduled(t.Cause.Decision, t.Cause.ErrorCode)
		h.log.Debug("job rescheduled", "job_id", a.id, "queue", a.queue, "decision", t.Cause.Decision,
			"code", t.Cause.ErrorCode, "in", t.Delay.Round(time.Millisecond), "attempt", t.Record.Attempts)
	case reportHeld:
		key := a.payload.KeyName
		if o, ok := h.observer.(metrics.FairShareObserver); ok {
			o.FairShareHeld(key)
		}
		h.log.Debug("job held for its key's fair share of the slots", "job_id", a.id, "queue", a.queue, "key", key,
			"in", t.Delay.Round(time.Millisecond))
	case reportRedelivered:
		h.log.Info("job redelivered after its outcome; ending as recorded", "job_id", a.id, "queue", a.queue, "state", t.State)
	case reportForeign:
		h.log.Warn("a task in a solvequeue queue is not a solvequeue job; archived", "task_id", a.id, "queue", a.queue,
			"reason", t.Cause.ErrorDescription)
	}
}
