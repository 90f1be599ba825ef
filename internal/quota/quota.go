// Package quota keeps each gateway key's quotas in Redis, shared by every gateway and worker on
// that Redis: its requests per second, its jobs in flight (accepted, not yet ended), its jobs
// waiting (accepted, not yet taken by a worker) and the bytes of the image bodies of its jobs in
// flight. It knows nothing of the keys file or of either protocol: the gateway says what the
// limits are and answers a refusal; the worker reports when a job is taken and when it ends.
//
// Every key it writes carries the key's queue as a Redis Cluster hash tag, and each script
// touches the keys of one queue only. An admitted job's entries expire by themselves (their
// score is an expiry, and the keys' TTL follows the newest), so a job whose end is never
// reported (its worker killed, its task deleted by hand) frees its slot once its TTL is over.
package quota

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
)

// sweepMax bounds how many expired jobs one admission forgets, so that a script never runs
// long; the rest go on the next admissions, and until then they count (a refusal too many,
// never an admission too many).
const sweepMax = 1000

// Limits are a key's quotas; a zero field is no limit.
type Limits struct {
	// InFlight is the most jobs accepted and not yet ended.
	InFlight int64
	// Waiting is the most jobs accepted and not yet taken by a worker.
	Waiting int64
	// ImageBytes is the most bytes of image bodies of jobs accepted and not yet ended.
	ImageBytes int64
}

// Job is what an admission records of a job.
type Job struct {
	// ID is the job's ID, unique in its queue.
	ID string
	// ImageBytes is the size of its image body, 0 when it has none.
	ImageBytes int64
	// TTL is how long its entries last when its end is never reported: longer than the job can
	// live (its deadline, plus the last attempt's time).
	TTL time.Duration
}

// Kind names a quota.
type Kind int

// The quotas an admission checks, in the order it checks them.
const (
	InFlight Kind = iota + 1
	Waiting
	ImageBytes
)

// Refusal says which quota refused an admission: Kind, its Limit and what was in use (jobs, or
// bytes for ImageBytes). The zero Refusal is an admission.
type Refusal struct {
	Kind  Kind
	Limit int64
	Used  int64
}

// Refused reports whether the admission was refused.
func (r Refusal) Refused() bool { return r.Kind != 0 }

// Store reads and writes the quotas in Redis.
type Store struct {
	rc redis.Cmdable
}

// New returns a Store over rc.
func New(rc redis.Cmdable) *Store { return &Store{rc: rc} }

// allowScript is a GCRA rate limiter on Redis's clock: KEYS[1] holds the theoretical arrival
// time of the next request (µs); ARGV[1] is the interval between requests (µs), ARGV[2] the
// burst. A request is allowed when it would not put that time more than a burst of intervals
// ahead of now; only an allowed request moves it. It returns 1 or 0.
var allowScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local nxt = tat + interval
if nxt - now > interval * burst then return 0 end
redis.call('SET', KEYS[1], string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)
return 1`)

// Allow counts one request of the named key against perSecond requests per second with a burst
// of burst (at least 1), and reports whether it is allowed. Every gateway on the Redis shares the
// count, and Redis's clock is the only one read.
func (s *Store) Allow(ctx context.Context, queue, keyName string, perSecond float64, burst int) (bool, error) {
	if perSecond <= 0 {
		return true, nil
	}
	interval := math.Max(1, 1e6/perSecond)
	ok, err := allowScript.Run(ctx, s.rc, []string{keys.GatewayRate(queue, keyName)}, interval, max(burst, 1)).Int()
	if err != nil {
		return false, fmt.Errorf("count the request against the key's rate limit: %w", err)
	}
	return ok == 1, nil
}

// forget is the part of the scripts that drops entries: forget(id) removes a job's entries and
// takes its image bytes off the total, which is deleted when nothing is left (so that it cannot
// drift). KEYS are those of admitScript.
const forget = `
local function forget(id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  local b = tonumber(redis.call('HGET', KEYS[3], id))
  if b then
    redis.call('HDEL', KEYS[3], id)
    if redis.call('HLEN', KEYS[3]) == 0 then
      redis.call('DEL', KEYS[4])
    else
      redis.call('DECRBY', KEYS[4], b)
    end
  end
end
`

// admitScript checks every quota of a key and records the job, in one step: KEYS[1] the jobs in
// flight, KEYS[2] the jobs waiting (both scored by expiry, Unix ms), KEYS[3] the image bytes per
// job, KEYS[4] their total; ARGV[1] the job ID, ARGV[2] its TTL (ms), ARGV[3] its image bytes,
// ARGV[4..6] the limits (0: none), ARGV[7] sweepMax. It first forgets the jobs whose entries
// expired. It returns {0, 0} for an admission (a job already admitted is admitted again without
// a second count), else {quota kind, what was in use}.
var admitScript = redis.NewScript(forget + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, ttl, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local maxF, maxW, maxB = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for _, g in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))) do
  forget(g)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], id) then return {0, 0} end
local f = redis.call('ZCARD', KEYS[1])
if maxF > 0 and f + 1 > maxF then return {1, f} end
local w = redis.call('ZCARD', KEYS[2])
if maxW > 0 and w + 1 > maxW then return {2, w} end
local b = tonumber(redis.call('GET', KEYS[4])) or 0
if maxB > 0 and size > 0 and b + size > maxB then return {3, b} end
local exp = now + ttl
redis.call('ZADD', KEYS[1], exp, id)
redis.call('ZADD', KEYS[2], exp, id)
if size > 0 then
  redis.call('HSET', KEYS[3], id, size)
  redis.call('INCRBY', KEYS[4], size)
end
for i = 1, 4 do
  local p = redis.call('PTTL', KEYS[i])
  if p ~= -2 and p < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return {0, 0}`)

// endScript forgets a job: KEYS as admitScript's, ARGV[1] the job ID.
var endScript = redis.NewScript(forget + `
forget(ARGV[1])
return 0`)

func jobKeys(queue, keyName string) []string {
	return []string{keys.GatewayInFlight(queue, keyName), keys.GatewayWaiting(queue, keyName),
		keys.GatewayImageBytes(queue, keyName), keys.GatewayImageBytesTotal(queue, keyName)}
}

// Admit checks the named key's quotas for one more job and, when none refuses it, records the
// job as in flight and waiting: one script, so that two gateways cannot both take the last slot.
// A job already admitted is admitted again and counted once.
func (s *Store) Admit(ctx context.Context, queue, keyName string, l Limits, j Job) (Refusal, error) {
	ttl := max(j.TTL.Milliseconds(), 1)
	res, err := admitScript.Run(ctx, s.rc, jobKeys(queue, keyName), j.ID, ttl, max(j.ImageBytes, 0),
		max(l.InFlight, 0), max(l.Waiting, 0), max(l.ImageBytes, 0), sweepMax).Int64Slice()
	if err != nil {
		return Refusal{}, fmt.Errorf("check the key's quotas: %w", err)
	}
	if len(res) != 2 {
		return Refusal{}, fmt.Errorf("check the key's quotas: the script answered %v", res)
	}
	r := Refusal{Kind: Kind(res[0]), Used: res[1]}
	switch r.Kind {
	case 0:
		return Refusal{}, nil
	case InFlight:
		r.Limit = l.InFlight
	case Waiting:
		r.Limit = l.Waiting
	case ImageBytes:
		r.Limit = l.ImageBytes
	default:
		return Refusal{}, fmt.Errorf("check the key's quotas: the script answered quota %d", r.Kind)
	}
	return r, nil
}

// Taken records that a worker took the job: it is no longer waiting. One command; a job not
// recorded (not a gateway job, or its entries expired) costs nothing more.
func (s *Store) Taken(ctx context.Context, queue, keyName, id string) error {
	if err := s.rc.ZRem(ctx, keys.GatewayWaiting(queue, keyName), id).Err(); err != nil {
		return fmt.Errorf("record that the job left its key's waiting jobs: %w", err)
	}
	return nil
}

// Ended records that the job ended (in any terminal outcome), or that it was never submitted
// after its admission: its slot and its image bytes are free. One script; repeating it is
// harmless.
func (s *Store) Ended(ctx context.Context, queue, keyName, id string) error {
	if err := endScript.Run(ctx, s.rc, jobKeys(queue, keyName), id).Err(); err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("free the job's slot in its key's quotas: %w", err)
	}
	return nil
}

// Usage is what a key has in use now, for tests and operators.
type Usage struct {
	InFlight, Waiting, ImageBytes int64
}

// Read returns what the named key has in use, counting entries not yet forgotten.
func (s *Store) Read(ctx context.Context, queue, keyName string) (Usage, error) {
	k := jobKeys(queue, keyName)
	var u Usage
	var err error
	if u.InFlight, err = s.rc.ZCard(ctx, k[0]).Result(); err != nil {
		return Usage{}, fmt.Errorf("read the key's quotas: %w", err)
	}
	if u.Waiting, err = s.rc.ZCard(ctx, k[1]).Result(); err != nil {
		return Usage{}, fmt.Errorf("read the key's quotas: %w", err)
	}
	u.ImageBytes, err = s.rc.Get(ctx, k[3]).Int64()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Usage{}, fmt.Errorf("read the key's quotas: %w", err)
	}
	return u, nil
}
