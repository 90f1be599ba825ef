// Package ledger keeps each queue's spend cap in Redis, shared by every worker, gateway and CLI on
// that Redis: the reservation a worker makes before each createTask, its settlement with the cost
// AnySolver reports, the pause of a spent queue and its resume once the window frees room. It
// knows nothing of AnySolver or asynq's handlers; the policy file says which queue has which cap.
//
// The window rolls in buckets of a sixtieth of its length. A bucket counts while any part of it is
// inside the window, so the ledger never reserves more than the cap in any window of that length;
// it may refuse up to a sixtieth of a window early.
//
// One rule says whether there is room for one more createTask, and the reservation, the resume
// of a spent queue and the gateway's answer (Usage.Room) all follow it: the window's count stays
// within its limit, and its money plus the createTask's estimate within the money limit. A
// createTask's estimate is its task type's average cost as AnySolver reported it to any worker
// (kept on the ledger beside the budget), or the budget's estimatedCost before one is seen, and
// never more than the money limit, so an empty window always has room for one. The resume and
// the gateway ask about the dearest type, so neither lets in a job a reservation would refuse.
package ledger

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// bucketsPerWindow is how finely a window rolls.
const bucketsPerWindow = 60

// microsPerUnit is the ledger's unit of money: a millionth of the account's currency, so that
// sums are exact integers in Redis.
const microsPerUnit = 1_000_000

const (
	// heldPastWindow is how long past its window a reservation stays outstanding: longer than
	// AnySolver keeps a task (5 minutes), so every reservation a worker may still settle is
	// there to be settled once; one older than that has left the window and settles nothing.
	heldPastWindow = time.Hour
	// costTypesMax bounds the task types whose average is kept (they are a handful; odd input
	// never grows the hash far).
	costTypesMax = 256
	// costsKept is how long a queue's observed costs outlive its last settlement; past it,
	// reservations go back to the budget's estimatedCost.
	costsKept = 31 * 24 * time.Hour
)

// Reservation is one createTask's hold on its queue's budget, kept in the job's record until it is
// settled, so that a worker resuming the job settles it. ID names it on the ledger, which settles
// each reservation once however many times a worker asks.
type Reservation struct {
	ID     string `json:"id"`
	Bucket int64  `json:"bucket"`
	Micros int64  `json:"micros"`
	// TaskType is the type of the task reserved for, whose average cost its settlement teaches.
	TaskType string `json:"taskType,omitempty"`
}

// Usage is a queue's spend in its current window.
type Usage struct {
	Queue       string            `json:"queue"`
	Budget      policyfile.Budget `json:"budget"`
	CreateTasks int64             `json:"createTasks"`
	Cost        float64           `json:"cost"`
	// RemainingCreateTasks and RemainingCost are what the window still allows; -1 where the
	// budget sets no such limit.
	RemainingCreateTasks int64   `json:"remainingCreateTasks"`
	RemainingCost        float64 `json:"remainingCost"`
	// Estimate is what the dearest createTask the queue may hold is reserved at: the largest of
	// the budget's estimatedCost and the observed average of every task type, at most MaxCost.
	Estimate float64 `json:"estimate"`
	// Room says the window has room for one more createTask at Estimate, by the same rule a
	// reservation and the resume of a spent queue follow.
	Room bool `json:"room"`
	// NextRoom is when the oldest spend leaves the window (zero when nothing is spent).
	NextRoom time.Time `json:"nextRoom,omitzero"`
	// Paused says the budget holds the queue paused.
	Paused bool `json:"paused"`
}

// Spent reports whether the window has no room for one more createTask (see Room): what the
// gateway answers ERROR_ZERO_BALANCE for, exactly when the workers hold the queue.
func (u Usage) Spent() bool { return !u.Room }

// Ledger reads and writes budgets in Redis. One Ledger serves a whole worker process: its
// reservations and settlements made at once share script runs (see Reserve).
type Ledger struct {
	rc       redis.UniversalClient
	reserves *combiner[reserveKey, reserveReq, reserveRes]
	settles  *combiner[string, settleReq, bool]
}

// New returns a Ledger over rc.
func New(rc redis.UniversalClient) *Ledger {
	l := &Ledger{rc: rc}
	l.reserves = newCombiner(gatherFor, l.reserveBatch)
	l.settles = newCombiner(gatherFor, l.settleBatch)
	return l
}

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

// rule is the one answer to "is there room for one more createTask", shared by the reservation
// (reserveScript), the watcher's resume (resumeScript) and the gateway's ERROR_ZERO_BALANCE
// (readScript, through Usage.Room), so that none of them can admit what another refuses. It
// follows tally (n and m) and reads ARGV[3] (the count limit), ARGV[4] (the money limit, in
// millionths; 0: none of either) and ARGV[5] (the budget's estimatedCost), and KEYS[2], the
// queue's observed average cost per task type.
//
// estimate(type) is what a createTask of that type is reserved at: the type's average as every
// worker's settlements taught it (costs are reported by AnySolver, so the figure is shared, not
// one worker's), else estimatedCost. dearest() is the most any createTask the queue may hold is
// reserved at: the largest of estimatedCost and every type's average. Both are at most the money
// limit, so that an empty window always has room for one createTask: a type dearer than the whole
// cap goes through alone in an otherwise empty window instead of holding its queue for ever.
// fits(est) is the rule itself: one more createTask stays within the count limit, and est more
// money stays within the money limit (with no money left, not even a free createTask fits).
const rule = `
local maxN, maxM, dflt = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local function capped(e)
  if maxM > 0 and e > maxM then return maxM end
  return e
end
local function estimate(typ)
  return capped(tonumber(redis.call('HGET', KEYS[2], typ)) or dflt)
end
local function dearest()
  local e = dflt
  for _, v in ipairs(redis.call('HVALS', KEYS[2])) do
    local a = tonumber(v)
    if a and a > e then e = a end
  end
  return capped(e)
end
local function fits(est)
  if maxN > 0 and n + 1 > maxN then return false end
  if maxM > 0 and (m >= maxM or m + est > maxM) then return false end
  return true
end
`

// reserveScript takes createTasks from the window, one for each request in ARGV[7..] (pairs of a
// task type and an id), each at estimate(type) if the rule allows it after the requests before
// it, and holds each taken one as outstanding under its id (KEYS[3], scored by the time it was
// taken) until it is settled, or until ARGV[6] ms past the window. It returns {bucket, ms until
// the oldest spend leaves (0 unless one was refused), then ok (1 or 0) and estimate for each
// request}: the rule applied to each in turn, exactly as the same requests one call each.
var reserveScript = redis.NewScript(tally + rule + `
local out = {cur, 0}
local took, money, refused = 0, 0, false
local held = {}
for i = 7, #ARGV, 2 do
  local est = estimate(ARGV[i])
  if fits(est) then
    n, m = n + 1, m + est
    took, money = took + 1, money + est
    held[#held + 1] = now
    held[#held + 1] = ARGV[i + 1]
    out[#out + 1] = 1
  else
    refused = true
    out[#out + 1] = 0
  end
  out[#out + 1] = est
end
if took > 0 then
  redis.call('HINCRBY', KEYS[1], 'n:' .. cur, took)
  redis.call('HINCRBY', KEYS[1], 'm:' .. cur, money)
  redis.call('HSET', KEYS[1], 'o', lo, 'N', n, 'M', m)
  redis.call('PEXPIRE', KEYS[1], w + 2 * g)
  local kept = tonumber(ARGV[6])
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (now - w - kept))
  redis.call('ZADD', KEYS[3], unpack(held))
  redis.call('PEXPIRE', KEYS[3], w + kept)
end
if refused then out[2] = wait() end
return out`)

// settleScript settles outstanding reservations, each once, one for each group of five in
// ARGV[3..]: an id, its bucket, the change of its money in millionths, its task type and the cost
// AnySolver reported in millionths. A reservation settled forgets its id (KEYS[3]), moves its
// money in its bucket and in the running sum (if that bucket is still kept), and, when AnySolver
// reported a cost, moves its type's average towards it by a tenth (ARGV[1] bounds how many types
// are kept, ARGV[2] how long the averages outlive the last settlement, in ms). A reservation that
// is not outstanding (settled already, or never held) changes nothing. It returns 1 for each
// reservation it settled, 0 for the others.
var settleScript = redis.NewScript(`
local out = {}
local learnt = false
for i = 3, #ARGV, 5 do
  if redis.call('ZREM', KEYS[3], ARGV[i]) == 0 then
    out[#out + 1] = 0
  else
    local delta, f = tonumber(ARGV[i + 2]), 'm:' .. ARGV[i + 1]
    if delta ~= 0 and redis.call('HEXISTS', KEYS[1], f) == 1 then
      redis.call('HINCRBY', KEYS[1], f, delta)
      if redis.call('HEXISTS', KEYS[1], 'M') == 1 then
        redis.call('HINCRBY', KEYS[1], 'M', delta)
      end
    end
    local c = tonumber(ARGV[i + 4])
    if c > 0 then
      local a = tonumber(redis.call('HGET', KEYS[2], ARGV[i + 3]))
      if a then
        redis.call('HSET', KEYS[2], ARGV[i + 3], math.floor(a + (c - a) / 10 + 0.5))
      elseif redis.call('HLEN', KEYS[2]) < tonumber(ARGV[1]) then
        redis.call('HSET', KEYS[2], ARGV[i + 3], c)
      end
      learnt = true
    end
    out[#out + 1] = 1
  end
end
if learnt then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
return out`)

// readScript tallies the window and says whether the budget paused the queue and whether the
// rule has room for the dearest createTask: {n, m, ms until the oldest spend leaves, paused,
// room, dearest, now (ms, Redis's clock)}.
var readScript = redis.NewScript(tally + rule + `
local d = dearest()
local room = 0
if fits(d) then room = 1 end
return {n, m, wait(), redis.call('EXISTS', KEYS[3]), room, d, now}`)

// pauseScript pauses the queue with asynq's own pause key unless somebody (an operator, the
// breaker) paused it already, and marks the pause as the budget's. It returns 1 if it paused.
var pauseScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('SET', KEYS[2], '1')
  return 1
end
return 0`)

// resumeScript lifts the budget's own pause (KEYS[3], and asynq's KEYS[4]) once the rule has
// room for the dearest createTask the queue may hold: whichever job a worker fetches next then
// fits, so a resume is never undone by the next reservation. It returns 1 if it resumed.
var resumeScript = redis.NewScript(tally + rule + `
if redis.call('EXISTS', KEYS[3]) == 0 then return 0 end
if not fits(dearest()) then return 0 end
redis.call('DEL', KEYS[3], KEYS[4])
return 1`)

func windowArgs(b policyfile.Budget) (bucketMs, windowMs int64) {
	windowMs = b.Window.Milliseconds()
	bucketMs = max(windowMs/bucketsPerWindow, 1)
	return bucketMs, windowMs
}

func micros(amount float64) int64 { return int64(math.Round(amount * microsPerUnit)) }

// ruleArgs are the arguments every script with the rule takes first: bucket and window in ms,
// the count and money limits and estimatedCost in millionths.
func ruleArgs(b policyfile.Budget, more ...any) []any {
	g, w := windowArgs(b)
	return append([]any{g, w, int64(b.MaxCreateTasks), micros(b.MaxCost), max(micros(b.EstimatedCost), 0)}, more...)
}

// Reserve takes one createTask of taskType from the queue's window, at that type's observed
// average cost (or the budget's estimatedCost before one is seen), if the window has room for it.
// ok is false when the budget is spent; retryIn is then how long until its oldest spend leaves
// the window. Calls made at once on the same Ledger share one script run (see combiner), each
// judged by the rule in turn.
func (l *Ledger) Reserve(ctx context.Context, queue string, b policyfile.Budget, taskType string) (r Reservation, ok bool, retryIn time.Duration, err error) {
	res, err := l.reserves.do(ctx, reserveKey{queue, b}, reserveReq{taskType: taskType, id: rand.Text()})
	if err != nil {
		return Reservation{}, false, 0, fmt.Errorf("reserve a createTask on queue %s's budget: %w", queue, err)
	}
	return res.r, res.ok, res.retryIn, nil
}

// reserveKey is what reservations share a script run by: a queue and its budget.
type reserveKey struct {
	queue string
	b     policyfile.Budget
}

// reserveReq is one call of Reserve.
type reserveReq struct{ taskType, id string }

// reserveRes is Reserve's answer to one call.
type reserveRes struct {
	r       Reservation
	ok      bool
	retryIn time.Duration
}

// reserveBatch runs reserveScript for a batch of Reserve's calls.
func (l *Ledger) reserveBatch(ctx context.Context, k reserveKey, reqs []reserveReq) ([]reserveRes, error) {
	args := ruleArgs(k.b, heldPastWindow.Milliseconds())
	for _, q := range reqs {
		args = append(args, q.taskType, q.id)
	}
	res, err := reserveScript.Run(ctx, l.rc, []string{keys.Budget(k.queue), keys.BudgetCosts(k.queue), keys.BudgetHeld(k.queue)}, args...).Int64Slice()
	if err == nil && len(res) != 2+2*len(reqs) {
		err = fmt.Errorf("the ledger answered %d figures for %d reservations", len(res), len(reqs))
	}
	if err != nil {
		return nil, err
	}
	out := make([]reserveRes, len(reqs))
	for i, q := range reqs {
		if res[2+2*i] == 1 {
			out[i] = reserveRes{r: Reservation{ID: q.id, Bucket: res[0], Micros: res[3+2*i], TaskType: q.taskType}, ok: true}
		} else {
			out[i] = reserveRes{retryIn: time.Duration(max(res[1], 0)) * time.Millisecond}
		}
	}
	return out, nil
}

// Settle replaces a reservation's money with what AnySolver reported (0 for a createTask that
// created nothing) and teaches its task type's average the reported cost. It settles each
// reservation once: settled is false, and nothing changes, when r was settled already (a job
// whose outcome could not be recorded runs again and finds the same reservation in its record)
// or is too old to be outstanding. A reservation whose bucket left the window moves no money.
// Calls made at once on the same Ledger share one script run, as Reserve's do.
func (l *Ledger) Settle(ctx context.Context, queue string, r Reservation, cost float64) (settled bool, err error) {
	settled, err = l.settles.do(ctx, queue, settleReq{r: r, cost: max(micros(cost), 0)})
	if err != nil {
		return false, fmt.Errorf("settle a createTask on queue %s's budget: %w", queue, err)
	}
	return settled, nil
}

// settleReq is one call of Settle: the reservation and the reported cost in millionths.
type settleReq struct {
	r    Reservation
	cost int64
}

// settleBatch runs settleScript for a batch of Settle's calls.
func (l *Ledger) settleBatch(ctx context.Context, queue string, reqs []settleReq) ([]bool, error) {
	args := make([]any, 0, 2+5*len(reqs))
	args = append(args, costTypesMax, costsKept.Milliseconds())
	for _, q := range reqs {
		args = append(args, q.r.ID, q.r.Bucket, q.cost-q.r.Micros, q.r.TaskType, q.cost)
	}
	res, err := settleScript.Run(ctx, l.rc, []string{keys.Budget(queue), keys.BudgetCosts(queue), keys.BudgetHeld(queue)}, args...).Int64Slice()
	if err == nil && len(res) != len(reqs) {
		err = fmt.Errorf("the ledger answered %d figures for %d settlements", len(res), len(reqs))
	}
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(reqs))
	for i, v := range res {
		out[i] = v == 1
	}
	return out, nil
}

// Read returns the queue's spend in its current window, and whether it has room for one more
// createTask.
func (l *Ledger) Read(ctx context.Context, queue string, b policyfile.Budget) (Usage, error) {
	res, err := readScript.Run(ctx, l.rc, []string{keys.Budget(queue), keys.BudgetCosts(queue), keys.BudgetPaused(queue)}, ruleArgs(b)...).Int64Slice()
	if err == nil && len(res) < 7 {
		err = fmt.Errorf("the ledger answered %d figures", len(res))
	}
	if err != nil {
		return Usage{}, fmt.Errorf("read queue %s's budget: %w", queue, err)
	}
	u := Usage{Queue: queue, Budget: b, CreateTasks: res[0], Cost: float64(res[1]) / microsPerUnit,
		RemainingCreateTasks: -1, RemainingCost: -1, Paused: res[3] == 1, Room: res[4] == 1,
		Estimate: float64(res[5]) / microsPerUnit}
	if b.MaxCreateTasks > 0 {
		u.RemainingCreateTasks = max(int64(b.MaxCreateTasks)-res[0], 0)
	}
	if b.MaxCost > 0 {
		u.RemainingCost = max(b.MaxCost-u.Cost, 0)
	}
	if res[0] > 0 || res[1] > 0 {
		// On Redis's clock, the ledger's own: two reads of an unchanged window agree.
		u.NextRoom = time.UnixMilli(res[6] + res[2]).Truncate(time.Second)
	}
	return u, nil
}

// Pause pauses a spent queue as the breaker does, with asynq's own pause (so the web UI shows
// it), unless it is paused already: an operator's pause or the breaker's is never taken over.
// It reports whether this call paused it.
func (l *Ledger) Pause(ctx context.Context, queue string) (bool, error) {
	n, err := pauseScript.Run(ctx, l.rc, []string{keys.AsynqPaused(queue), keys.BudgetPaused(queue)}, strconv.FormatInt(time.Now().Unix(), 10)).Int()
	if err != nil {
		return false, fmt.Errorf("pause spent queue %s: %w", queue, err)
	}
	return n == 1, nil
}

// ResumeIfRoom lifts the budget's own pause of the queue once the window has room for one more
// createTask of the dearest type the queue may hold (Usage.Estimate), by the rule a reservation
// follows: the job a worker fetches next then fits, whatever its type, so a resume is never
// undone by the next reservation. It reports whether it resumed the queue.
func (l *Ledger) ResumeIfRoom(ctx context.Context, queue string, b policyfile.Budget) (bool, error) {
	n, err := resumeScript.Run(ctx, l.rc, []string{keys.Budget(queue), keys.BudgetCosts(queue), keys.BudgetPaused(queue), keys.AsynqPaused(queue)},
		ruleArgs(b)...).Int()
	if err != nil {
		return false, fmt.Errorf("resume queue %s after its budget: %w", queue, err)
	}
	return n == 1, nil
}
