package enqueue

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
)

// QueuesKey is the Redis set of the queues solvequeue's workers serve: each worker adds its
// queues when it starts (RegisterQueues). With asynq's own list of queues (every queue a task
// was ever enqueued to) it is how the readers of per-queue keys (the dead-letter queue, the
// breaker's pauses) find every queue, on one Redis or a Cluster, without scanning keys. It is a
// single key (no queue's hash tag): a short list of names that lives as long as the Redis.
const QueuesKey = "solvequeue:queues"

// asynqQueuesKey is asynq v0.26's set of every queue a task was enqueued to (what
// Inspector.Queues reads).
const asynqQueuesKey = "asynq:queues"

// RegisterQueues adds queues to QueuesKey.
func RegisterQueues(ctx context.Context, rc redis.Cmdable, queues ...string) error {
	if len(queues) == 0 {
		return nil
	}
	members := make([]any, len(queues))
	for i, q := range queues {
		members[i] = q
	}
	if err := rc.SAdd(ctx, QueuesKey, members...).Err(); err != nil {
		return fmt.Errorf("register queues %v: %w", queues, err)
	}
	return nil
}

// KnownQueues returns every queue solvequeue may hold keys of, sorted: those a worker
// registered and those asynq knows. Names that cannot be queues (which no key of ours is made
// with) are left out.
func KnownQueues(ctx context.Context, rc redis.Cmdable) ([]string, error) {
	ours, err := rc.SMembers(ctx, QueuesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	asynqs, err := rc.SMembers(ctx, asynqQueuesKey).Result()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	all := jobQueues(append(ours, asynqs...))
	slices.Sort(all)
	return slices.Compact(all), nil
}

// jobQueues returns qs without the names a job's queue cannot have, such as the worker's queue
// of callback deliveries, which asynq lists among its queues.
func jobQueues(qs []string) []string {
	return slices.DeleteFunc(qs, func(q string) bool { return !ValidQueueName(q) })
}
