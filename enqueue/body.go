package enqueue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// A large image body travels under its own key (see internal/imagebody).

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
		if p, err := jobwire.DecodePayload(info.Payload); err != nil || p.BodyRef == key {
			return
		}
	}
	_ = c.rc.Del(ctx, key).Err()
}
