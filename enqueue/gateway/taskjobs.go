package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
)

// TaskJob is a job a taskId may name: its ID were the taskId one of the key KeyName's.
type TaskJob struct {
	KeyName string
	JobID   string
}

// TaskJobs returns, for a taskId, the job ID it names under each gateway key name that gateways
// on rc have submitted jobs for, sorted by name. A taskId is given once, so at most one of these
// jobs exists, in its key's queue; the others name nothing. It is for an operator who has a
// client's taskId and not its key (the console's search); it writes nothing, and on a Redis where
// no gateway ever gave a taskId it returns none.
func TaskJobs(ctx context.Context, rc redis.UniversalClient, taskID int64) ([]TaskJob, error) {
	if taskID <= 0 || taskID >= 1<<idBits {
		return nil, nil
	}
	stored, err := rc.Get(ctx, keys.GatewayTaskIDSecret).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the taskId key: %w", err)
	}
	secret, err := hex.DecodeString(stored)
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("the taskId key in Redis (%s) is damaged", keys.GatewayTaskIDSecret)
	}
	names, err := rc.SMembers(ctx, keys.GatewayKeyNames).Result()
	if err != nil {
		return nil, fmt.Errorf("read the gateway's key names: %w", err)
	}
	slices.Sort(names)
	ids := &idAllocator{}
	ids.perm.Store(newPermutation(secret))
	out := make([]TaskJob, 0, len(names))
	for _, name := range names {
		id, err := ids.jobID(ctx, name, taskID)
		if err != nil {
			return nil, err
		}
		out = append(out, TaskJob{KeyName: name, JobID: id})
	}
	return out, nil
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
