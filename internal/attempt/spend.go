package attempt

import (
	"context"
	"time"
)

// The spend caps, as the handler meets them: before a createTask on a queue with a budget the
// handler reserves it on the shared ledger (internal/ledger), at the task type's average cost as
// the ledger has learnt it from every worker's settlements (or the budget's estimatedCost before
// any), and settles it with the cost AnySolver reports once the remote task is over. A spent
// budget holds the job (decide's endedBudgetSpent: not paid, not failed, its retry budget
// untouched) and pauses its queue; the budget watcher resumes the queue once its window has room,
// by the ledger's one rule for room that the reservation and the gateway follow too.

// reserve takes the attempt's createTask from its queue's budget. spent is true when the budget
// refused it: the queue is then paused (unless somebody paused it already) and retryIn says when
// the window frees room.
func (h *Handler) reserve(ctx context.Context, a *attempt) (spent bool, retryIn time.Duration, err error) {
	b := h.policy.Queue(a.queue).Budget
	if b == nil {
		return false, 0, nil
	}
	r, ok, retryIn, err := h.budgets.Reserve(ctx, a.queue, *b, a.payload.TaskType())
	if err != nil {
		return false, 0, err
	}
	if !ok {
		if paused, err := h.budgets.Pause(ctx, a.queue); err == nil && paused {
			h.log.Warn("budget spent: queue paused until its window frees room; waiting jobs are kept",
				"queue", a.queue, "budget", b.String(), "room_in", retryIn.Round(time.Second))
		}
		return true, retryIn, nil
	}
	a.rec.Budget = &r
	return false, 0, nil
}

// settle replaces the attempt's reservation with the cost AnySolver reported (0 for a createTask
// that created nothing, or a task that ended without a cost) and forgets it. The ledger settles a
// reservation once: a job that runs again after its terminal record failed to save finds the same
// reservation in its record, and settling it again changes nothing, nor counts the cost again in
// the metrics. A failed settle leaves the reservation at its estimate: the budget errs on the side
// of spending less.
func (h *Handler) settle(ctx context.Context, a *attempt, cost float64) {
	r := a.rec.Budget
	if r == nil {
		return
	}
	a.rec.Budget = nil
	settled, err := h.budgets.Settle(context.WithoutCancel(ctx), a.queue, *r, cost)
	if err != nil {
		h.log.Warn("could not settle a createTask's cost on its queue's budget; it stays at its estimate",
			"job_id", a.id, "queue", a.queue, "err", err)
	}
	if settled || err != nil {
		h.observer.Spent(a.queue, cost)
	}
}
