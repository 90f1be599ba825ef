package gateway

import (
	"context"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/taskid"
)

// TaskJob is a job a taskId may name: its ID were the taskId one of the key KeyName's.
type TaskJob = taskid.Job

// TaskJobs returns, for a taskId, the job ID it names under each gateway key name that gateways
// on rc have submitted jobs for, sorted by name. A taskId is given once, so at most one of these
// jobs exists, in its key's queue; the others name nothing. It is for an operator who has a
// client's taskId and not its key (the console's search); it writes nothing.
func TaskJobs(ctx context.Context, rc redis.UniversalClient, taskID int64) ([]TaskJob, error) {
	return taskid.Jobs(ctx, rc, taskID)
}

// noteKeyName adds the key's name to the names TaskJobs tries, once per key and process (the
// set only grows, and a name is written before its first job). A failure is logged and tried
// again with the key's next job: it costs the console its search by taskId, never a job.
func (h *Handler) noteKeyName(ctx context.Context, name string) {
	if _, done := h.named.Load(name); done {
		return
	}
	if err := h.rc.SAdd(ctx, keys.GatewayKeyNames, name).Err(); err != nil {
		h.cfg.Logger.Warn("gateway: could not record the key's name for the console's search by taskId", "key", name, "err", err)
		return
	}
	h.named.Store(name, true)
}
