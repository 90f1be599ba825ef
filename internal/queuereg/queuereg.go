package enqueue

import (
	"context"
	"fmt"
	"slices"

	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// RegisterQueues adds queues to keys.Queues.
func RegisterQueues(ctx context.Context, rc redis.Cmdable, queues ...string) error {
	if len(queues) == 0 {
		return nil
	}
	members := make([]any, len(queues))
	for i, q := range queues {
		members[i] = q
	}
	if err := rc.SAdd(ctx, keys.Queues, members...).Err(); err != nil {
		return fmt.Errorf("register queues %v: %w", queues, err)
	}
	return nil
}

// KnownQueues returns every queue solvequeue may hold keys of, sorted: those a worker
// registered and those asynq knows. Names that cannot be queues (which no key of ours is made
// with) are left out.
func KnownQueues(ctx context.Context, rc redis.Cmdable) ([]string, error) {
	ours, err := rc.SMembers(ctx, keys.Queues).Result()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	asynqs, err := rc.SMembers(ctx, keys.AsynqQueues).Result()
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
