package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
)

// conclude records the attempt's verdict and translates it for asynq: nil completes the task
// (solved and failed keep their record for the retention time), a RetryError or ThrottleError
// schedules the next attempt, and a dead job is archived with SkipRetry after its durable
// dead-letter entry is written. This is the one place where outcomes meet asynq.
func (h *handler) conclude(ctx context.Context, a *attempt, err error) error {
	now := h.now()
	var (
		retry    *RetryError
		throttle *ThrottleError
		failed   *FailedError
		dead     *DeadError
	)
	switch {
	case err == nil:
		a.rec.State, a.rec.Error, a.rec.Remote = enqueue.StateSolved, nil, nil
		return h.finish(ctx, a, now, "")
	case errors.As(err, &failed):
		a.rec.State, a.rec.Error, a.rec.Remote = enqueue.StateFailed, &failed.Info, nil
		return h.finish(ctx, a, now, failed.Info.ErrorCode)
	case errors.As(err, &dead):
		return h.bury(ctx, a, dead.cause, now)
	case errors.As(err, &retry):
		budget := h.policy.MaxRetries()
		if a.payload.MaxRetries != nil {
			budget = *a.payload.MaxRetries
		}
		if a.retried >= budget {
			retry.Info.ErrorDescription += fmt.Sprintf(" (retry budget of %d spent)", budget)
			return h.bury(ctx, a, retry.cause, now)
		}
		retry.Delay = h.policy.RetryDelay(a.retried, h.jitter())
		if dl := a.payload.Deadline; !dl.IsZero() && !now.Add(retry.Delay).Before(dl) {
			retry.Info.ErrorDescription += " (the job's deadline passes before the next try)"
			return h.bury(ctx, a, retry.cause, now)
		}
		a.rec.State, a.rec.Error = enqueue.StateRetrying, &retry.Info
		a.rec.Retries++
		h.reschedule(ctx, a, retry.cause, retry.Delay)
		return retry
	case errors.As(err, &throttle):
		throttle.Wait = max(throttle.Wait, h.policy.ThrottleDelay(throttle.Verdict, h.jitter()))
		limit := a.payload.Deadline
		if limit.IsZero() {
			limit = a.payload.SubmittedAt.Add(h.lifetime)
		}
		if !now.Add(throttle.Wait).Before(limit) {
			throttle.Info.ErrorDescription += " (the job's deadline passes before the next try)"
			throttle.Info.Decision = string(classify.Dead)
			return h.bury(ctx, a, throttle.cause, now)
		}
		a.rec.State, a.rec.Error = enqueue.StateRetrying, &throttle.Info
		a.rec.Throttles++
		h.reschedule(ctx, a, throttle.cause, throttle.Wait)
		return throttle
	default:
		// Shutdown, the attempt's timeout, or Redis trouble: the record (with any paid remote
		// task) stays as saved, and asynq hands the job back.
		return err
	}
}

func (h *handler) reschedule(ctx context.Context, a *attempt, c cause, in time.Duration) {
	if err := h.store.save(ctx, a.queue, a.id, &a.rec); err != nil {
		h.log.Error("could not save job record", "job_id", a.id, "err", err)
	}
	h.observer.AttemptRescheduled(c.Info.Decision, c.Info.ErrorCode)
	h.log.Debug("job rescheduled", "job_id", a.id, "queue", a.queue, "decision", c.Info.Decision,
		"code", c.Info.ErrorCode, "in", in.Round(time.Millisecond), "attempt", a.rec.Attempts)
}

// bury ends the job as dead: record, durable dead letter, then asynq's archive.
func (h *handler) bury(ctx context.Context, a *attempt, c cause, now time.Time) error {
	c.Info.Decision = string(classify.Dead)
	a.rec.State, a.rec.Error, a.rec.Remote = enqueue.StateDead, &c.Info, nil
	if err := h.finish(ctx, a, now, c.Info.ErrorCode); err != nil {
		return err
	}
	if err := h.store.addDeadLetter(ctx, a.queue, a.id, a.raw, a.rec, now); err != nil {
		// Without its durable entry the job must not leave: asynq retries it and the
		// replay writes the entry.
		return err
	}
	return fmt.Errorf("%w: %w", &DeadError{c}, asynq.SkipRetry)
}

// finish records a terminal outcome, logs it and counts it.
func (h *handler) finish(ctx context.Context, a *attempt, now time.Time, code string) error {
	a.rec.FinishedAt = now.UTC()
	if err := h.store.save(ctx, a.queue, a.id, &a.rec); err != nil {
		return err
	}
	end := JobEnd{Queue: a.queue, TaskType: a.payload.TaskType(), State: a.rec.State, Code: code,
		Attempts: a.rec.Attempts, CreateTasks: a.rec.CreateTasks, Polls: a.rec.Polls, Cost: a.rec.Cost,
		SolveTime: a.solveTime}
	if !a.payload.SubmittedAt.IsZero() {
		end.EndToEnd = now.Sub(a.payload.SubmittedAt)
	}
	h.observer.JobEnded(end)
	level := slog.LevelInfo
	if a.rec.State == enqueue.StateDead {
		level = slog.LevelWarn
	}
	h.log.Log(ctx, level, "job ended", "job_id", a.id, "queue", a.queue, "state", a.rec.State, "code", code,
		"attempts", a.rec.Attempts, "create_tasks", a.rec.CreateTasks, "polls", a.rec.Polls,
		"took", end.EndToEnd.Round(time.Millisecond))
	return nil
}
