package worker

import (
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
)

// A handler's verdict on one attempt is one of four typed errors (or nil for solved), matched
// with errors.As and translated to asynq in one place: conclude (the record and the DLQ) plus
// isFailure and retryDelay below (asynq's retry accounting).

// cause is the error behind a verdict.
type cause struct {
	Verdict classify.Verdict
	Info    enqueue.ErrorInfo
}

func (c cause) describe(kind string) string {
	return fmt.Sprintf("%s: %s (errorId %d): %s", kind, c.Info.ErrorCode, c.Info.ErrorID, c.Info.ErrorDescription)
}

// RetryError asks for another attempt after Delay, spending one unit of the retry budget.
type RetryError struct {
	cause
	Delay time.Duration
}

func (e *RetryError) Error() string { return e.describe("retry") }

// ThrottleError asks for another attempt after Wait without spending the retry budget: the
// provider asked us to slow down, or the account breaker holds the job until it resumes.
// Throttles are bounded by the job's deadline, not by the budget.
type ThrottleError struct {
	cause
	Wait time.Duration
}

func (e *ThrottleError) Error() string { return e.describe("throttle") }

// FailedError ends the job as failed: it can never succeed as submitted. It is kept with the task
// (readable by ID for the retention time) and is not put in the dead-letter queue.
type FailedError struct{ cause }

func (e *FailedError) Error() string { return e.describe("failed") }

// DeadError ends the job as dead: it goes to asynq's archive and to the durable dead-letter
// record, for an operator to fix and redrive.
type DeadError struct{ cause }

func (e *DeadError) Error() string { return e.describe("dead") }

// verdictError wraps a classified error in the typed error of its decision.
func verdictError(v classify.Verdict, info enqueue.ErrorInfo) error {
	info.Decision = string(v.Decision)
	c := cause{Verdict: v, Info: info}
	switch v.Decision {
	case classify.Retry:
		return &RetryError{cause: c}
	case classify.Throttle:
		return &ThrottleError{cause: c, Wait: v.Wait}
	case classify.Failed:
		return &FailedError{cause: c}
	default:
		return &DeadError{cause: c}
	}
}

// isFailure is asynq's Config.IsFailure: a throttle is not a failure, so asynq retries it without
// counting it against the retry budget.
func isFailure(err error) bool {
	var t *ThrottleError
	return !errors.As(err, &t)
}

// retryDelayFunc is asynq's Config.RetryDelayFunc. Verdicts carry their own delay, decided by
// conclude; a lease recovered after a worker crash comes back at once so that its paid remote
// task is resumed while AnySolver still keeps it; anything else backs off like a retry.
func retryDelayFunc(policy *classify.Policy, jitter func() float64) asynq.RetryDelayFunc {
	return func(n int, err error, _ *asynq.Task) time.Duration {
		var (
			r *RetryError
			t *ThrottleError
			d time.Duration
		)
		switch {
		case errors.As(err, &r):
			d = r.Delay
		case errors.As(err, &t):
			d = t.Wait
		case errors.Is(err, asynq.ErrLeaseExpired):
			d = time.Second
		default:
			d = policy.RetryDelay(n, jitter())
		}
		return notEarly(time.Now(), d)
	}
}

// notEarly stretches d so that now+d falls on a whole second. asynq keeps the time of the next
// try in whole seconds, rounded down, so a delay it is given comes up to a second early: a 1 s
// retry at once, RATE_LIMITED's 5 s wait in 4. On a whole second nothing is rounded away.
func notEarly(now time.Time, d time.Duration) time.Duration {
	at := now.Add(d)
	if frac := at.Sub(at.Truncate(time.Second)); frac > 0 {
		d += time.Second - frac
	}
	return d
}
