// Package imagebody stores a job's large image body under its own Redis key, outside the payload
// that asynq's heartbeat rewrites every 5 s, and ends its life: Drop when no job needs it, Keep
// (no TTL) while its job is a dead letter.
package imagebody

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
)

// An image body larger than Config.BodyInlineMax travels under its own Redis key, not inside the
// payload that asynq's heartbeat rewrites every 5 s. Its life:
//
//   - enqueue's Submit writes it (SET NX, with a TTL) and then enqueues the job. When the job
//     does not go in (its ID is taken by a job with another body, or the enqueue fails) the body
//     it wrote is deleted again, so resubmitting an ID with a new body leaves nothing behind.
//   - The worker deletes it when the job ends solved or failed (Drop), and keeps it without a
//     TTL while the job is a dead letter (Keep), since a redrive needs it.
//   - An operator's purge (enqueue/admin) deletes it with the dead letter; a redrive gives it
//     its TTL back.
//
// The key (keys.Body) holds the queue as a Redis Cluster hash tag and a hash of the job ID and the
// body, so a job's body lives in its queue's slot, two bodies of one ID never share a key, and
// two jobs never share one (deleting one job's body never takes another's).

// Drop deletes an image body that no job needs any more (the job ended solved or failed).
// It refuses a key that is not a body's.
func Drop(ctx context.Context, rc redis.Cmdable, key string) error {
	if !keys.IsBody(key) {
		return fmt.Errorf("drop image body: %q is not under %s", key, keys.BodyPrefix)
	}
	if err := rc.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("drop image body %s: %w", key, err)
	}
	return nil
}

// Keep takes the TTL off an image body, for a job that became a dead letter: the body then
// lives as long as the dead letter, until Purge deletes it or Redrive gives it a TTL again. A
// body already gone is not an error (the job is dead either way).
func Keep(ctx context.Context, rc redis.Cmdable, key string) error {
	if !keys.IsBody(key) {
		return fmt.Errorf("keep image body: %q is not under %s", key, keys.BodyPrefix)
	}
	if err := rc.Persist(ctx, key).Err(); err != nil {
		return fmt.Errorf("keep image body %s: %w", key, err)
	}
	return nil
}
