package gateway

import (
	"context"
	"time"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// lifetime returns the key's lifetime, LifetimeDefault for a Key built without one.
func (k Key) lifetime() time.Duration {
	if k.Lifetime <= 0 {
		return LifetimeDefault
	}
	return k.Lifetime
}

// status reads the outcome of a key's job as both protocols answer it: the job's own, or, for a
// job whose lifetime is over and that no worker has ended, the end a worker will give it
// (pastDeadline). A client polling a job that nobody serves hears its error once the lifetime is
// over, never "processing" for ever.
func (h *Handler) status(ctx context.Context, key Key, jobID string) (enqueue.Outcome, error) {
	out, err := h.client.StatusIn(ctx, key.Queue, jobID)
	if err != nil {
		return out, err
	}
	return pastDeadline(out, h.cfg.Now()), nil
}

// pastDeadline returns the outcome a worker gives a job that has not ended once its deadline has
// passed at now, as the attempt machine decides it: a job that never created a task ends failed
// with JOB_EXPIRED (nothing was paid); one held by an error (a spent budget) ends dead with that
// error. A job that may be polling a paid task (active, or one that created a task) can still be
// solved until AnySolver forgets that task, so it is given jobwire.RemoteTaskTTL more before it is
// answered dead. Any other outcome is returned as it is.
func pastDeadline(out enqueue.Outcome, now time.Time) enqueue.Outcome {
	if out.State.Terminal() || out.Deadline.IsZero() || now.Before(out.Deadline) {
		return out
	}
	mayPoll := out.State == enqueue.StateActive || out.CreateTasks > 0
	if mayPoll && now.Before(out.Deadline.Add(jobwire.RemoteTaskTTL)) {
		return out
	}
	out.NextRunAt, out.FinishedAt = time.Time{}, out.Deadline
	if !mayPoll && out.Error == nil {
		out.State = enqueue.StateFailed
		out.Error = &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: classify.CodeJobExpired, Attempt: out.Attempts,
			ErrorDescription: "the job's deadline passed before any attempt"}
		return out
	}
	info := enqueue.ErrorInfo{ErrorID: 1, ErrorCode: classify.CodeJobExpired, ErrorDescription: "the job's deadline passed"}
	if out.Error != nil {
		info = *out.Error
		info.ErrorDescription += " (then the job's deadline passed)"
	}
	out.State, out.Error = enqueue.StateDead, &info
	return out
}
