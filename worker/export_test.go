package worker

import (
	"context"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/internal/attempt"
)

// WaitingAttempts is how many of w's attempts wait for their next poll, for the tests of package
// worker_test.
func WaitingAttempts(w *Worker) int { return w.handler.Waiting() }

// ProcessAs runs one attempt of t on w's handler as asynq's retry number retried of a task with
// the given id, queue and MaxRetry, for the tests of package worker_test.
func ProcessAs(ctx context.Context, w *Worker, id, queue string, retried, maxRetry int, t *asynq.Task) error {
	return w.handler.ProcessAs(ctx, id, queue, retried, maxRetry, t)
}

// IsFailure is the worker's asynq Config.IsFailure: whether asynq counts err against the task's
// retries.
func IsFailure(err error) bool { return attempt.IsFailure(err) }
