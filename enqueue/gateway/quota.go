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
		return rateLimited(key)
	}
	return nil
}

// rateLimited is the refusal of a request over its key's rate limit.
func rateLimited(key Key) *apiError {
	return badRequest(CodeRateLimited, "key %q is over its rate limit of %g requests per second", key.Name, key.RateLimit)
}

// burst is how many requests a key may make at once: a second's worth, at least one.
func burst(perSecond float64) int { return max(1, int(math.Ceil(perSecond))) }

// rateCount counts one createTask (or in.php) request against its key's rate limit exactly
// once. A request that reaches its admission is counted there, in the admission's own script:
// one round trip for both (admit). One that ends before it (an invalid task, a spent budget, a
// Redis error) is counted on its own by settle, whose refusal then wins over the request's own
// answer; and one with an Idempotency-Key is counted on its own before the key is claimed. So
// every request is counted once and answered as if its rate limit had been checked first, and
// a request over it writes nothing: what it does before its count only reads (the budget) or
// takes a taskId, and a taskId taken and not used is skipped at no cost.
type rateCount struct {
	key     Key
	counted bool
}

// settle counts the request against its key's rate limit unless that is done, and returns the
// refusal (RATE_LIMITED) or Redis's error in place of err when there is one; else err.
func (h *Handler) settle(ctx context.Context, rate *rateCount, err error) error {
	if rate.counted {
		return err
	}
	rate.counted = true
	if rerr := h.allow(ctx, rate.key); rerr != nil {
		return rerr
	}
	return err
}

// admit counts the request against its key's rate limit unless that is done (rateCount), then
// checks the key's quotas for one more job and records it, in one round trip
// (quota.Store.Admit): a request over the rate limit is refused with RATE_LIMITED, and a job
// over a quota with ERROR_NO_SLOT_AVAILABLE, naming the quota and the key, before anything of it
// is written.
//
// A job that no quota of its key counts (each set to 0, or only an image-bytes quota and a job
// without an image) has nothing to check or record: its request is counted against the rate
// limit alone, if its key has one.
func (h *Handler) admit(ctx context.Context, rate *rateCount, job enqueue.Job) error {
	key := rate.key
	if !key.counts(job) {
		return h.settle(ctx, rate, nil)
	}
	limits := quota.Limits{InFlight: key.MaxJobsInFlight, Waiting: key.MaxJobsWaiting, ImageBytes: key.MaxImageBytesWaiting}
	if !rate.counted && key.RateLimit > 0 {
		limits.Rate = quota.Rate{PerSecond: key.RateLimit, Burst: burst(key.RateLimit)}
	}
	rate.counted = true
	r, err := h.quotas.Admit(ctx, key.Queue, key.Name, limits,
		quota.Job{ID: job.ID, ImageBytes: imageBytes(job), TTL: key.lifetime() + quotaSlack})
	if err != nil {
		return err
	}
	switch r.Kind {
	case 0:
		return nil
	case quota.RateLimit:
		return rateLimited(key)
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
	default: // quota.ImageBytes: admit answers quota.RateLimit itself
		return "maxImageBytesWaiting", "bytes of image bodies of jobs not yet ended; try again when one of them ends"
	}
}

// release frees the slot admit took for a job that was not submitted after all.
func (h *Handler) release(key Key, job enqueue.Job) {
	if !key.counts(job) {
		return // admit took none
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.quotas.Ended(ctx, key.Queue, key.Name, job.ID); err != nil {
		h.cfg.Logger.Warn("gateway: could not free the quota slot of a job that was not submitted; it frees itself after the key's lifetime",
			"key", key.Name, "err", err)
	}
}

// imageBytes is the size of a job's image body as the client sent it (base64), 0 without one.
func imageBytes(job enqueue.Job) int64 {
	body, _ := job.Task["body"].(string)
	return int64(len(body))
}

// counts reports whether a quota of the key counts job, so that admit checks and records it: an
// in-flight or waiting quota counts every job, an image-bytes quota a job with an image.
func (k Key) counts(job enqueue.Job) bool {
	return k.MaxJobsInFlight > 0 || k.MaxJobsWaiting > 0 || (k.MaxImageBytesWaiting > 0 && imageBytes(job) > 0)
}
