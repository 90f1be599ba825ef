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
	// Rate is the key's rate limit, counted in the admission's own script (see Admit). The zero
	// Rate counts nothing.
	Rate Rate
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

// Rate is a rate limit: PerSecond requests per second (0 or less: none), with a burst of Burst
// requests at once (at least 1).
type Rate struct {
	PerSecond float64
	Burst     int
}

// interval is the GCRA interval between requests, in µs, and the burst, as the scripts take
// them: an interval of 0 is no limit.
func (r Rate) interval() (float64, int) {
	if r.PerSecond <= 0 {
		return 0, 1
	}
	return math.Max(1, 1e6/r.PerSecond), max(r.Burst, 1)
}

// Kind names a quota.
type Kind int

// The quotas an admission checks, in the order it checks them.
const (
	RateLimit Kind = iota + 1
	InFlight
	Waiting
	ImageBytes
)

// Refusal says which quota refused an admission: Kind, its Limit and what was in use (jobs, or
// bytes for ImageBytes; both 0 for RateLimit). The zero Refusal is an admission.
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

// gcra is the part of the scripts that counts a request against a rate limit: a GCRA on
// Redis's clock. allowed(key, interval, burst, now) reads from key the theoretical arrival time
// of the next request (µs), with interval the time between requests (µs) and now Redis's time
// (µs). A request is allowed when it would not put that time more than a burst of intervals
// ahead of now; only an allowed request moves it.
const gcra = `
local function allowed(key, interval, burst, now)
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local nxt = tat + interval
  if nxt - now > interval * burst then return false end
  redis.call('SET', key, string.format('%.0f', nxt), 'PX', math.floor((nxt - now) / 1000) + 1)
  return true
end
`

// allowScript counts one request against the rate limit in KEYS[1]: ARGV[1] the interval between
// requests (µs), ARGV[2] the burst. It returns 1 or 0.
var allowScript = redis.NewScript(gcra + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
if allowed(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now) then return 1 end
return 0`)

// Allow counts one request of the named key against perSecond requests per second with a burst
// of burst (at least 1), and reports whether it is allowed. Every gateway on the Redis shares the
// count, and Redis's clock is the only one read.
func (s *Store) Allow(ctx context.Context, queue, keyName string, perSecond float64, burst int) (bool, error) {
	interval, b := Rate{PerSecond: perSecond, Burst: burst}.interval()
	if interval == 0 {
		return true, nil
	}
	ok, err := allowScript.Run(ctx, s.rc, []string{keys.GatewayRate(queue, keyName)}, interval, b).Int()
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

// admitScript counts a request against its key's rate limit, then checks every quota of the key
// and records the job, in one step: KEYS[1] the jobs in flight, KEYS[2] the jobs waiting (both
// scored by expiry, Unix ms), KEYS[3] the image bytes per job, KEYS[4] their total, KEYS[5] the
// rate limit; ARGV[1] the job ID, ARGV[2] its TTL (ms), ARGV[3] its image bytes, ARGV[4..6] the
// limits (0: none), ARGV[7] sweepMax, ARGV[8] the rate limit's interval (µs; 0: none) and
// ARGV[9] its burst. A request over the rate limit is refused before anything else is read; one
// within it has spent its part of the limit whatever the quotas answer. It then forgets the jobs
// whose entries expired. It returns {0, 0} for an admission (a job already admitted is admitted
// again without a second count), else {quota kind, what was in use}.
var admitScript = redis.NewScript(forget + gcra + `
local t = redis.call('TIME')
local interval = tonumber(ARGV[8])
if interval > 0 and not allowed(KEYS[5], interval, tonumber(ARGV[9]), tonumber(t[1]) * 1000000 + tonumber(t[2])) then
  return {1, 0}
end
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local id, ttl, size = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local maxF, maxW, maxB = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for _, g in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[7]))) do
  forget(g)
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZSCORE', KEYS[1], id) then return {0, 0} end
local f = redis.call('ZCARD', KEYS[1])
if maxF > 0 and f + 1 > maxF then return {2, f} end
local w = redis.call('ZCARD', KEYS[2])
if maxW > 0 and w + 1 > maxW then return {3, w} end
local b = tonumber(redis.call('GET', KEYS[4])) or 0
if maxB > 0 and size > 0 and b + size > maxB then return {4, b} end
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

// endScript forgets a job: KEYS[1..4] as admitScript's, ARGV[1] the job ID.
var endScript = redis.NewScript(forget + `
forget(ARGV[1])
return 0`)

func jobKeys(queue, keyName string) []string {
	return []string{keys.GatewayInFlight(queue, keyName), keys.GatewayWaiting(queue, keyName),
		keys.GatewayImageBytes(queue, keyName), keys.GatewayImageBytesTotal(queue, keyName)}
}

// Admit counts the request against the named key's rate limit (l.Rate, as Allow does) and, when
// it is within it, checks the key's quotas for one more job and, when none refuses it, records
// the job as in flight and waiting: one script and one round trip, so that two gateways cannot
// both take the last slot. A request refused by the rate limit (RateLimit) records nothing; one
// within it spends its part of the limit even when a quota refuses the job, as a request
// counted by Allow before its admission would. A job already admitted is admitted again and
// counted once.
func (s *Store) Admit(ctx context.Context, queue, keyName string, l Limits, j Job) (Refusal, error) {
	ttl := max(j.TTL.Milliseconds(), 1)
	interval, burst := l.Rate.interval()
	res, err := admitScript.Run(ctx, s.rc, append(jobKeys(queue, keyName), keys.GatewayRate(queue, keyName)),
		j.ID, ttl, max(j.ImageBytes, 0), max(l.InFlight, 0), max(l.Waiting, 0), max(l.ImageBytes, 0), sweepMax,
		interval, burst).Int64Slice()
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
	case RateLimit:
		r.Used = 0
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
