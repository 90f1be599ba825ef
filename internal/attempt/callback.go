package attempt

import (
	"context"
	"errors"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/internal/callback"
)

// scheduleCallback schedules the callback of the job of a, called for every transition t: only a
// terminal one that ends the job or replays its recorded end (a redelivered job) schedules
// anything (callback.Callbacks.Schedule).
func scheduleCallback(ctx context.Context, c *callback.Callbacks, a *attempt, t Transition) error {
	if !t.State.Terminal() || (t.Report != reportEnded && t.Report != reportRedelivered) {
		return nil
	}
	return c.Schedule(ctx, a.id, a.payload, a.raw, t.Record)
}

// processCallback runs one callback delivery; a delivery to be tried again is handed back to
// asynq as a transition that spends a retry after the delivery's backoff.
func processCallback(ctx context.Context, c *callback.Callbacks, t *asynq.Task) error {
	err := c.ProcessTask(ctx, t)
	var retry *callback.RetryError
	if errors.As(err, &retry) {
		return &attemptError{Transition{HandBack: retry.Err, SpendsRetry: true, Delay: retry.Delay}}
	}
	return err
}
