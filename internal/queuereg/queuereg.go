// Package queuereg keeps the registry of the queues solvequeue may hold keys of (those a worker
// registered and those asynq knows), and says which names can be a job's queue.
package queuereg

import (
	"context"
	"fmt"
	"regexp"
	"slices"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
)

// Register adds queues to keys.Queues.
func Register(ctx context.Context, rc redis.Cmdable, queues ...string) error {
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

// Known returns every queue solvequeue may hold keys of, sorted: those a worker
// registered and those asynq knows. Names that cannot be queues (which no key of ours is made
// with) are left out.
func Known(ctx context.Context, rc redis.Cmdable) ([]string, error) {
	ours, err := rc.SMembers(ctx, keys.Queues).Result()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	asynqs, err := rc.SMembers(ctx, keys.AsynqQueues).Result()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	all := JobQueues(append(ours, asynqs...))
	slices.Sort(all)
	return slices.Compact(all), nil
}

// JobQueues returns qs without the names a job's queue cannot have, such as the worker's queue
// of callback deliveries, which asynq lists among its queues.
func JobQueues(qs []string) []string {
	return slices.DeleteFunc(qs, func(q string) bool { return !ValidName(q) })
}

var queueName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// ValidName reports whether name can be a queue: 1-64 letters, digits, '_', '.', ':' or
// '-' (no braces or spaces, which would break asynq's Redis keys). Jobs and workers share it.
func ValidName(name string) bool { return queueName.MatchString(name) }
