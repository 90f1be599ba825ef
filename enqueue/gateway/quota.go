package gateway

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/quota"
)

// quotaSlack is how long past its key's lifetime an admitted job holds its slot when its end is
// never reported (its worker killed, its task deleted in the web UI): the last attempt of a job
// may begin just before its deadline and run for an attempt's time, polling a paid task. A job
// whose end is reported frees its slot at once.
const quotaSlack = jobwire.AttemptTimeoutDefault + time.Minute

// allow counts a request against its key's rate limit, shared by every gateway on the Redis,
// and refuses one over it with RATE_LIMITED.
func (h *Handler) allow(ctx context.Context, key Key) error {
	if key.RateLimit <= 0 {
		return nil
	}
	ok, err := h.quotas.Allow(ctx, key.Queue, key.Name, key.RateLimit, burst(key.RateLimit))
	if err != nil {
		return err
	}
	if !ok {
		return badRequest(CodeRateLimited, "key %q is over its rate limit of %g requests per second", key.Name, key.RateLimit)
	}
	return nil
}

// burst is how many requests a key may make at once: a second's worth, at least one.
func burst(perSecond float64) int { return max(1, int(math.Ceil(perSecond))) }

// admit checks the key's quotas for one more job and records it (quota.Store.Admit): a job over
// a quota is refused with ERROR_NO_SLOT_AVAILABLE, naming the quota and the key, before
// anything of it is written.
func (h *Handler) admit(ctx context.Context, key Key, job enqueue.Job) error {
	limits := quota.Limits{InFlight: key.MaxJobsInFlight, Waiting: key.MaxJobsWaiting, ImageBytes: key.MaxImageBytesWaiting}
	r, err := h.quotas.Admit(ctx, key.Queue, key.Name, limits,
		quota.Job{ID: job.ID, ImageBytes: imageBytes(job), TTL: key.lifetime() + quotaSlack})
	if err != nil {
		return err
	}
	if r.Kind == 0 {
		return nil
	}
	field, what := quotaWords(r.Kind)
	return &apiError{id: 1, code: CodeNoSlotAvailable,
		description: fmt.Sprintf("key %q is at its %s quota: %d of %d %s", key.Name, field, r.Used, r.Limit, what)}
}

// quotaWords names a quota as the keys file does, and says what it counts and when to try again,
// for the description of a refusal.
func quotaWords(k quota.Kind) (field, what string) {
	switch k {
	case quota.InFlight:
		return "maxJobsInFlight", "jobs accepted and not yet ended; try again when one of them ends"
	case quota.Waiting:
		return "maxJobsWaiting", "jobs waiting for a worker; try again when a worker has taken one"
	default: // quota.ImageBytes: Admit answers no other kind
		return "maxImageBytesWaiting", "bytes of image bodies of jobs not yet ended; try again when one of them ends"
	}
}

// release frees the slot admit took for a job that was not submitted after all.
func (h *Handler) release(key Key, jobID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.quotas.Ended(ctx, key.Queue, key.Name, jobID); err != nil {
		h.cfg.Logger.Warn("gateway: could not free the quota slot of a job that was not submitted; it frees itself after the key's lifetime",
			"key", key.Name, "err", err)
	}
}

// imageBytes is the size of a job's image body as the client sent it (base64), 0 without one.
func imageBytes(job enqueue.Job) int64 {
	body, _ := job.Task["body"].(string)
	return int64(len(body))
}
