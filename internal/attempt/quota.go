package attempt

import (
	"context"
	"log/slog"

	"github.com/solvequeue/solvequeue/internal/quota"
)

// quotaTaken tells the quotas of the job's gateway key that a worker took it: it no longer counts
// as waiting. It is told on the job's first attempt only (no record of a start yet); a job that
// came in some other way than the gateway (no KeyName) costs nothing. A failure is logged and
// let be: the job's entry expires by itself.
func (h *Handler) quotaTaken(ctx context.Context, a *attempt) {
	if a.payload.KeyName == "" || !a.rec.StartedAt.IsZero() {
		return
	}
	if err := h.quotas.Taken(ctx, a.queue, a.payload.KeyName, a.id); err != nil {
		h.log.Warn("could not tell the gateway key's quotas that its job was taken", "job_id", a.id, "key", a.payload.KeyName, "err", err)
	}
}

// quotaEnded tells the quotas of the job's gateway key that the job ended: its slot and its
// image bytes are free. Like quotaTaken, it costs a job without a KeyName nothing.
func quotaEnded(ctx context.Context, q *quota.Store, a *attempt, log *slog.Logger) {
	if a.payload.KeyName == "" {
		return
	}
	if err := q.Ended(ctx, a.queue, a.payload.KeyName, a.id); err != nil {
		log.Warn("could not free the gateway key's quota slot of an ended job", "job_id", a.id, "key", a.payload.KeyName, "err", err)
	}
}
