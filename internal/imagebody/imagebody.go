package enqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// An image body larger than Config.BodyInlineMax travels under its own Redis key, not inside the
// payload that asynq's heartbeat rewrites every 5 s. Its life:
//
//   - Submit writes it (SET NX, with a TTL: see bodyTTL) and then enqueues the job. When the job
//     does not go in (its ID is taken by a job with another body, or the enqueue fails) the body
//     it wrote is deleted again, so resubmitting an ID with a new body leaves nothing behind.
//   - The worker deletes it when the job ends solved or failed (DropBody), and keeps it without a
//     TTL while the job is a dead letter (KeepBody), since a redrive needs it.
//   - Purge deletes it with the dead letter; Redrive gives it its TTL back.
//
// The key (BodyKey) holds the queue as a Redis Cluster hash tag and a hash of the job ID and the
// body, so a job's body lives in its queue's slot, two bodies of one ID never share a key, and
// two jobs never share one (deleting one job's body never takes another's).

// DropBody deletes an image body that no job needs any more (the job ended solved or failed).
// It refuses a key that is not a body's.
func DropBody(ctx context.Context, rc redis.Cmdable, key string) error {
	if !keys.IsBody(key) {
		return fmt.Errorf("drop image body: %q is not under %s", key, keys.BodyPrefix)
	}
	if err := rc.Del(ctx, key).Err(); err != nil {
		return fmt.Errorf("drop image body %s: %w", key, err)
	}
	return nil
}

// KeepBody takes the TTL off an image body, for a job that became a dead letter: the body then
// lives as long as the dead letter, until Purge deletes it or Redrive gives it a TTL again. A
// body already gone is not an error (the job is dead either way).
func KeepBody(ctx context.Context, rc redis.Cmdable, key string) error {
	if !keys.IsBody(key) {
		return fmt.Errorf("keep image body: %q is not under %s", key, keys.BodyPrefix)
	}
	if err := rc.Persist(ctx, key).Err(); err != nil {
		return fmt.Errorf("keep image body %s: %w", key, err)
	}
	return nil
}

// bodyTTL is how long a body written now may be needed: until one attempt after the job's
// deadline (no AnySolver task is created after it), or Config.BlobTTL for a job without one. The
// worker deletes it sooner, when the job ends.
func (c *Client) bodyTTL(now, deadline time.Time) time.Duration {
	if deadline.IsZero() {
		return c.cfg.BlobTTL
	}
	return max(deadline.Sub(now)+c.cfg.AttemptTimeout, time.Minute)
}

// putBody writes a job's image body under its key and says whether it created the key. A key
// already there (the same ID submitted with the same body) keeps its value and gets the TTL.
func (c *Client) putBody(ctx context.Context, key, body string, ttl time.Duration) (created bool, err error) {
	created, err = c.rc.SetNX(ctx, key, body, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("store image body: %w", err)
	}
	if !created {
		if err := c.rc.Expire(ctx, key, ttl).Err(); err != nil {
			return false, fmt.Errorf("store image body: %w", err)
		}
	}
	return created, nil
}

// releaseBody deletes a body that Submit wrote for a job that did not go in, unless the job now
// under that ID uses the same key (the same body, submitted twice at once). On any doubt (the job
// cannot be read) it leaves the body to its TTL rather than take it from a job.
func (c *Client) releaseBody(ctx context.Context, queue, id, key string, enqueueErr error) {
	ctx = context.WithoutCancel(ctx)
	if errors.Is(enqueueErr, asynq.ErrTaskIDConflict) {
		info, err := c.inspector.GetTaskInfo(queue, id)
		if err != nil {
			return
		}
		if p, err := DecodePayload(info.Payload); err != nil || p.BodyRef == key {
			return
		}
	}
	_ = c.rc.Del(ctx, key).Err()
}
