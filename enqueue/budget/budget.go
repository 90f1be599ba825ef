// Package budget keeps each queue's spend cap in Redis, shared by every worker, gateway and CLI on
// that Redis: the reservation a worker makes before each createTask, its settlement with the cost
// AnySolver reports, the pause of a spent queue and its resume once the window frees room. It
// knows nothing of AnySolver or asynq's handlers; the policy file says which queue has which cap.
//
// The window rolls in buckets of a sixtieth of its length. A bucket counts while any part of it is
// inside the window, so the ledger never allows more than the cap in any window of that length; it
// may refuse up to a sixtieth of a window early.
package budget

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/classify"
)

// bucketsPerWindow is how finely a window rolls.
const bucketsPerWindow = 60

// microsPerUnit is the ledger's unit of money: a millionth of the account's currency, so that
// sums are exact integers in Redis.
const microsPerUnit = 1_000_000

// Key is the Redis hash holding a queue's ledger: fields n:<bucket> (createTask calls) and
// m:<bucket> (money in millionths), and their running sums N and M over the buckets from o on. It carries the queue's hash tag, beside asynq's own keys of
// the queue on one Redis Cluster slot.
func Key(queue string) string { return "solvequeue:{" + queue + "}:budget" }

// PausedKey marks a queue as paused by its budget (and not by an operator or the breaker).
func PausedKey(queue string) string { return "solvequeue:{" + queue + "}:budget:paused" }

// asynqPausedKey is asynq v0.26's pause key of a queue (what Inspector.PauseQueue sets).
func asynqPausedKey(queue string) string { return "asynq:{" + queue + "}:paused" }

// Reservation is one createTask's hold on its queue's budget, kept in the job's record until it is
// settled, so that a worker resuming the job settles it.
type Reservation struct {
	Bucket int64 `json:"bucket"`
	Micros int64 `json:"micros"`
}

// Usage is a queue's spend in its current window.
type Usage struct {
	Queue       string          `json:"queue"`
	Budget      classify.Budget `json:"budget"`
	CreateTasks int64           `json:"createTasks"`
	Cost        float64         `json:"cost"`
	// RemainingCreateTasks and RemainingCost are what the window still allows; -1 where the
	// budget sets no such limit.
	RemainingCreateTasks int64   `json:"remainingCreateTasks"`
	RemainingCost        float64 `json:"remainingCost"`
	// NextRoom is when the oldest spend leaves the window (zero when nothing is spent).
	NextRoom time.Time `json:"nextRoom,omitzero"`
	// Paused says the budget holds the queue paused.
	Paused bool `json:"paused"`
}

// Spent reports whether the window allows no further createTask.
func (u Usage) Spent() bool {
	return (u.Budget.MaxCreateTasks > 0 && u.RemainingCreateTasks <= 0) || (u.Budget.MaxCost > 0 && u.RemainingCost <= 0)
}

// Ledger reads and writes budgets in Redis.
type Ledger struct {
	rc redis.UniversalClient
}

// New returns a Ledger over rc.
func New(rc redis.UniversalClient) *Ledger { return &Ledger{rc: rc} }

// ErrSpent is what Reserve's callers wrap when a budget refuses a createTask.
var ErrSpent = errors.New("the queue's budget is spent")

// tally brings the window up to now and sets n, m (its sums), now (ms, Redis's clock), cur
// (now's bucket), lo (the oldest bucket inside the window) and a function wait() (ms until the
// oldest spend leaves the window, 0 when nothing is spent). ARGV[1] is the bucket length in ms,
// ARGV[2] the window in ms.
//
// Besides its buckets the hash keeps running sums (fields N and M) and the oldest bucket they
// count (o): a call subtracts and forgets only the buckets that left the window since the last
// one, which is none most of the time, instead of reading every bucket. A hash without o (empty,
// or written by an older solvequeue), or one idle for longer than a window, is summed in full,
// once; the hash never holds more than a window of buckets, so that is bounded too.
const tally = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local g = tonumber(ARGV[1])
local w = tonumber(ARGV[2])
local cur = math.floor(now / g)
local lo = math.floor((now - w) / g)
local n, m
local st = redis.call('HMGET', KEYS[1], 'o', 'N', 'M')
local o = tonumber(st[1])
if o == nil or lo - o > 2 * math.floor(w / g) + 2 then
  n, m = 0, 0
  local all = redis.call('HGETALL', KEYS[1])
  for i = 1, #all, 2 do
    if string.sub(all[i], 2, 2) == ':' then
      local kind, b = string.sub(all[i], 1, 1), tonumber(string.sub(all[i], 3))
      if b == nil or b < lo then
        redis.call('HDEL', KEYS[1], all[i])
      else
        local v = tonumber(all[i + 1]) or 0
        if kind == 'n' then n = n + v else m = m + v end
      end
    end
  end
  if #all > 0 then redis.call('HSET', KEYS[1], 'o', lo, 'N', n, 'M', m) end
else
  n, m = tonumber(st[2]) or 0, tonumber(st[3]) or 0
  if o < lo then
    while o < lo do
      local v = redis.call('HMGET', KEYS[1], 'n:' .. o, 'm:' .. o)
      if v[1] or v[2] then
        n = n - (tonumber(v[1]) or 0)
        m = m - (tonumber(v[2]) or 0)
        redis.call('HDEL', KEYS[1], 'n:' .. o, 'm:' .. o)
      end
      o = o + 1
    end
    redis.call('HSET', KEYS[1], 'o', lo, 'N', n, 'M', m)
  end
end
local function wait()
  for b = lo, cur do
    local v = redis.call('HMGET', KEYS[1], 'n:' .. b, 'm:' .. b)
    if (tonumber(v[1]) or 0) > 0 or (tonumber(v[2]) or 0) > 0 then
      return (b + 1) * g + w - now
    end
  end
  return 0
end
`

// reserveScript takes one createTask and ARGV[5] millionths from the window if the budget allows
// it: ARGV[3] is the count limit, ARGV[4] the money limit (0: none). It returns
// {1, bucket, n, m} when reserved, {0, ms until the oldest spend leaves, n, m} when spent.
var reserveScript = redis.NewScript(tally + `
local maxN, maxM, est = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if (maxN > 0 and n + 1 > maxN) or (maxM > 0 and (m >= maxM or m + est > maxM)) then
  return {0, wait(), n, m}
end
redis.call('HINCRBY', KEYS[1], 'n:' .. cur, 1)
redis.call('HINCRBY', KEYS[1], 'm:' .. cur, est)
redis.call('HSET', KEYS[1], 'o', lo, 'N', n + 1, 'M', m + est)
redis.call('PEXPIRE', KEYS[1], w + 2 * g)
return {1, cur, n + 1, m + est}`)

// settleScript moves a reservation's money to what was really spent (ARGV[2] millionths), in the
// bucket it was taken from and in the running sum, if that bucket is still kept.
var settleScript = redis.NewScript(`
local f = 'm:' .. ARGV[1]
if redis.call('HEXISTS', KEYS[1], f) == 1 then
  redis.call('HINCRBY', KEYS[1], f, tonumber(ARGV[2]))
  if redis.call('HEXISTS', KEYS[1], 'M') == 1 then
    redis.call('HINCRBY', KEYS[1], 'M', tonumber(ARGV[2]))
  end
  return 1
end
return 0`)

// readScript tallies the window and says whether the budget paused the queue:
// {n, m, ms until the oldest spend leaves, paused}.
var readScript = redis.NewScript(tally + `
return {n, m, wait(), redis.call('EXISTS', KEYS[2])}`)

// pauseScript pauses the queue with asynq's own pause key unless somebody (an operator, the
// breaker) paused it already, and marks the pause as the budget's. It returns 1 if it paused.
var pauseScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[2], '1')
  return 1
end
return 0`)

// resumeScript lifts the budget's own pause once the window has room: ARGV[3] and ARGV[4] are
// the limits, ARGV[5] the money one more createTask would reserve. It returns 1 if it resumed.
var resumeScript = redis.NewScript(tally + `
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
local maxN, maxM, est = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if (maxN > 0 and n + 1 > maxN) or (maxM > 0 and (m >= maxM or m + est > maxM)) then return 0 end
redis.call('DEL', KEYS[2], KEYS[3])
return 1`)

func windowArgs(b classify.Budget) (bucketMs, windowMs int64) {
	windowMs = b.Window.Milliseconds()
	bucketMs = max(windowMs/bucketsPerWindow, 1)
	return bucketMs, windowMs
}

func micros(amount float64) int64 { return int64(math.Round(amount * microsPerUnit)) }

func limitArgs(b classify.Budget) (maxN, maxM int64) {
	return int64(b.MaxCreateTasks), micros(b.MaxCost)
}

// Reserve takes one createTask, at estimate money, from the queue's window. ok is false when the
// budget is spent; retryIn is then how long until its oldest spend leaves the window.
func (l *Ledger) Reserve(ctx context.Context, queue string, b classify.Budget, estimate float64) (r Reservation, ok bool, retryIn time.Duration, err error) {
	g, w := windowArgs(b)
	maxN, maxM := limitArgs(b)
	est := max(micros(estimate), 0)
	res, err := reserveScript.Run(ctx, l.rc, []string{Key(queue)}, g, w, maxN, maxM, est).Int64Slice()
	if err != nil || len(res) < 2 {
		return Reservation{}, false, 0, fmt.Errorf("reserve a createTask on queue %s's budget: %w", queue, err)
	}
	if res[0] == 0 {
		return Reservation{}, false, time.Duration(max(res[1], 0)) * time.Millisecond, nil
	}
	return Reservation{Bucket: res[1], Micros: est}, true, 0, nil
}

// Settle replaces a reservation's money with what AnySolver reported (0 for a createTask that
// created nothing). A reservation whose bucket left the window already changes nothing.
func (l *Ledger) Settle(ctx context.Context, queue string, r Reservation, cost float64) error {
	delta := micros(cost) - r.Micros
	if delta == 0 {
		return nil
	}
	if err := settleScript.Run(ctx, l.rc, []string{Key(queue)}, r.Bucket, delta).Err(); err != nil {
		return fmt.Errorf("settle a createTask on queue %s's budget: %w", queue, err)
	}
	return nil
}

// Read returns the queue's spend in its current window.
func (l *Ledger) Read(ctx context.Context, queue string, b classify.Budget) (Usage, error) {
	g, w := windowArgs(b)
	res, err := readScript.Run(ctx, l.rc, []string{Key(queue), PausedKey(queue)}, g, w).Int64Slice()
	if err != nil || len(res) < 4 {
		return Usage{}, fmt.Errorf("read queue %s's budget: %w", queue, err)
	}
	u := Usage{Queue: queue, Budget: b, CreateTasks: res[0], Cost: float64(res[1]) / microsPerUnit,
		RemainingCreateTasks: -1, RemainingCost: -1, Paused: res[3] == 1}
	if b.MaxCreateTasks > 0 {
		u.RemainingCreateTasks = max(int64(b.MaxCreateTasks)-res[0], 0)
	}
	if b.MaxCost > 0 {
		u.RemainingCost = max(b.MaxCost-u.Cost, 0)
	}
	if res[0] > 0 || res[1] > 0 {
		u.NextRoom = time.Now().Add(time.Duration(res[2]) * time.Millisecond).Truncate(time.Second)
	}
	return u, nil
}

// Pause pauses a spent queue as the breaker does, with asynq's own pause (so the web UI shows
// it), unless it is paused already: an operator's pause or the breaker's is never taken over.
// It reports whether this call paused it.
func (l *Ledger) Pause(ctx context.Context, queue string) (bool, error) {
	n, err := pauseScript.Run(ctx, l.rc, []string{asynqPausedKey(queue), PausedKey(queue)}, strconv.FormatInt(time.Now().Unix(), 10)).Int()
	if err != nil {
		return false, fmt.Errorf("pause spent queue %s: %w", queue, err)
	}
	return n == 1, nil
}

// ResumeIfRoom lifts the budget's own pause of the queue once one more createTask at estimate
// fits in the window. It reports whether it resumed the queue.
func (l *Ledger) ResumeIfRoom(ctx context.Context, queue string, b classify.Budget, estimate float64) (bool, error) {
	g, w := windowArgs(b)
	maxN, maxM := limitArgs(b)
	n, err := resumeScript.Run(ctx, l.rc, []string{Key(queue), PausedKey(queue), asynqPausedKey(queue)},
		g, w, maxN, maxM, max(micros(estimate), 0)).Int()
	if err != nil {
		return false, fmt.Errorf("resume queue %s after its budget: %w", queue, err)
	}
	return n == 1, nil
}
