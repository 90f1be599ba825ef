package breaker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/loop"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/replica"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// Defaults for Config.
const (
	ProbeMinDefault = 3 * time.Second
	ProbeMaxDefault = 30 * time.Second
)

// Config configures the account breaker.
//
// ERROR_ZERO_BALANCE, ERROR_KEY_DOES_NOT_EXIST and ERROR_USER_BANNED are about the account, not
// the job: every job behind them would hit the same wall. The job that met the error gets its
// classified decision; then the breaker pauses the worker's queues with asynq's queue pause
// (visible and reversible in the web UI), so waiting jobs are kept instead of burned, and jobs
// already running that meet the same error are held (throttled) instead of ended. It probes
// getBalance with backoff and resumes the queues it paused itself (never an operator's pause)
// once the balance is positive or, for the key and ban codes, once a probe succeeds.
type Config struct {
	// Disabled turns the breaker off: account errors then only end the job that met them.
	Disabled bool
	// ProbeMin is the first wait between probes. Defaults to 3 s.
	ProbeMin time.Duration
	// ProbeMax caps the wait between probes. Defaults to 30 s.
	ProbeMax time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.ProbeMin <= 0 {
		c.ProbeMin = ProbeMinDefault
	}
	if c.ProbeMax < c.ProbeMin {
		c.ProbeMax = max(ProbeMaxDefault, c.ProbeMin)
	}
	return c
}

// State is the breaker as stored in Redis.
type State struct {
	Open         bool      `json:"open"`
	Code         string    `json:"code,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	PausedQueues []string  `json:"pausedQueues,omitempty"`
	// ID names this opening of the breaker: the queues it paused are marked with it, and only a
	// resume that probed this opening closes it.
	ID string `json:"id,omitempty"`
}

// Read reads the breaker's state from Redis; while it is open, PausedQueues lists the
// queues it paused (across every known queue: see queuereg.Known).
func Read(ctx context.Context, rc redis.UniversalClient) (State, error) {
	s, err := readBreakerKey(ctx, rc)
	if err != nil || !s.Open {
		return s, err
	}
	paused, err := breakerPauses(ctx, rc)
	if err != nil {
		return s, fmt.Errorf("read breaker: %w", err)
	}
	s.PausedQueues = slices.Sorted(maps.Keys(paused))
	return s, nil
}

// readBreakerKey reads keys.Breaker alone.
func readBreakerKey(ctx context.Context, rc redis.Cmdable) (State, error) {
	raw, err := rc.Get(ctx, keys.Breaker).Bytes()
	if errors.Is(err, redis.Nil) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("read breaker: %w", err)
	}
	var s State
	if err := json.Unmarshal(raw, &s); err != nil {
		return State{}, fmt.Errorf("read breaker: %w", err)
	}
	s.Open = true
	return s, nil
}

// breakerPauses returns the queues the breaker's mark is on, with the ID of the opening that
// paused each, reading every known queue's mark in one pipeline (one per node on a Cluster).
func breakerPauses(ctx context.Context, rc redis.Cmdable) (map[string]string, error) {
	queues, err := queuereg.Known(ctx, rc)
	if err != nil || len(queues) == 0 {
		return nil, err
	}
	marks := make([]*redis.StringCmd, len(queues))
	_, err = rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, q := range queues {
			marks[i] = p.Get(ctx, keys.BreakerPaused(q))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	paused := map[string]string{}
	for i, m := range marks {
		if id, err := m.Result(); err == nil {
			paused[queues[i]] = id
		}
	}
	return paused, nil
}

// Params configure a Breaker.
type Params struct {
	Config    Config
	Redis     redis.UniversalClient
	AnySolver *anysolver.Client
	Queues    []string // the queues it pauses
	Log       *slog.Logger
	Observer  Observer
	Now       func() time.Time
}

// Observer is told when this worker opens or closes the breaker (metrics.Observer is one).
type Observer interface {
	BreakerChanged(open bool, code string)
}

// Breaker is one worker's side of the account breaker: it opens it (Trip) and runs the prober
// that resumes the queues once the account works again (Start, Shutdown).
type Breaker struct {
	Params
	prober *loop.Loop
}

// New returns a Breaker; Start runs its prober.
func New(p Params) *Breaker {
	p.Config = p.Config.WithDefaults()
	return &Breaker{Params: p}
}

// pauseScript pauses one queue for the breaker with asynq's own pause key (KEYS[1]: the key
// asynq:{<queue>}:paused that Inspector.PauseQueue sets in v0.26, so the web UI shows it and an
// operator can lift it there) unless somebody else (an operator, a budget) paused it, and marks
// it (KEYS[2]) with the opening's ID (ARGV[2]). A queue the breaker paused already takes the new
// ID. Both keys are the queue's, on its Cluster slot. It returns 1 when the queue is the
// breaker's.
var pauseScript = redis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX') or redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('SET', KEYS[2], ARGV[2])
  return 1
end
return 0`)

// unpauseScript lifts the breaker's pause of one queue: when the queue carries the breaker's
// mark (KEYS[2]) with ID ARGV[1], or any mark when ARGV[1] is "", it deletes the mark and asynq's
// pause (KEYS[1]). It returns 1 when it resumed the queue.
var unpauseScript = redis.NewScript(`
local mark = redis.call('GET', KEYS[2])
if not mark or (ARGV[1] ~= '' and mark ~= ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
return 1`)

// closeScript closes the breaker (KEYS[1]) if it is the opening ARGV[1] (or an opening without an
// ID): a resume never closes an opening it did not probe. It returns 1 when the breaker is closed.
var closeScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then return 1 end
local ok, s = pcall(cjson.decode, v)
if ok and type(s) == 'table' and (s.id or '') == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0`)

// Reset closes the account breaker by an operator's hand, as a successful probe does: the
// queues it paused are resumed (never one an operator paused) and returned. Nothing is checked
// first: if the account is still unusable, the next job that meets the error opens it again.
func Reset(ctx context.Context, rc redis.UniversalClient) ([]string, error) {
	if err := rc.Del(ctx, keys.Breaker).Err(); err != nil {
		return nil, fmt.Errorf("reset breaker: %w", err)
	}
	resumed, err := liftPauses(ctx, rc, "")
	if err != nil {
		return resumed, fmt.Errorf("reset breaker: %w", err)
	}
	return resumed, nil
}

// pause pauses queue for the opening id and reports whether the queue is the breaker's.
func pause(ctx context.Context, rc redis.Cmdable, queue, id string, now time.Time) (bool, error) {
	n, err := pauseScript.Run(ctx, rc, []string{keys.AsynqPaused(queue), keys.BreakerPaused(queue)}, now.Unix(), id).Int()
	if err != nil {
		return false, fmt.Errorf("pause queue %s: %w", queue, err)
	}
	return n == 1, nil
}

// unpause lifts the breaker's pause of queue if it is the opening id's ("" for any opening's).
func unpause(ctx context.Context, rc redis.Cmdable, queue, id string) (bool, error) {
	n, err := unpauseScript.Run(ctx, rc, []string{keys.AsynqPaused(queue), keys.BreakerPaused(queue)}, id).Int()
	if err != nil {
		return false, fmt.Errorf("resume queue %s: %w", queue, err)
	}
	return n == 1, nil
}

// Trip opens the breaker for code and pauses this worker's queues. It reports whether this
// call opened it; when it was open already the caller's job is held rather than ended (and the
// queues are paused all the same: one an operator lifted meanwhile is paused again).
//
// The breaker's key and each queue's pause are keys of different Cluster slots, so no script
// holds them all: the breaker opens first, then each queue is paused and marked with the
// opening's ID, one script per queue. A resume closes the breaker first and lifts the marks
// after; should it close the breaker while this trip is still pausing, the trip finds the
// breaker closed when it is done and lifts the pauses it made itself.
//
// Where the primary has replicas, the trip waits until one holds the breaker and the pauses
// before it says the breaker is open: a Sentinel failover right after then keeps the queues
// paused, where asynchronous replication alone could lose them and let the waiting jobs meet
// the account error again (each opening fails the one job that met it).
func (b *Breaker) Trip(ctx context.Context, code, reason string) (TripResult, error) {
	rc, acked := b.acking(ctx)
	opened, paused, closedMeanwhile, err := b.tripOn(ctx, rc, code, reason)
	acked(opened) // the jobs that meet the open breaker (many at once) only repeat its pauses
	return TripResult{Opened: opened, Announce: opened && err == nil && !closedMeanwhile, Paused: paused}, err
}

// TripResult is what a trip did: Opened says this trip opened the breaker (else it was open
// already); Announce says the opening stands and is to be announced (Announce) once the outcome
// of the job that opened it is written.
type TripResult struct {
	Opened, Announce bool
	Paused           []string // the queues the trip paused
}

// News is an opening of the breaker waiting to be announced.
type News struct {
	Code, Reason string
	Paused       []string
}

// Announce logs and counts an opening of the breaker.
func (b *Breaker) Announce(n News) {
	b.Log.Warn("breaker open: AnySolver account problem; queues paused, waiting jobs kept",
		"code", n.Code, "reason", n.Reason, "paused_queues", n.Paused)
	b.Observer.BreakerChanged(true, n.Code)
}

// acking returns the connection a change of the breaker's state is written on, and a function
// that gives the connection back, first waiting when asked to, where the primary has replicas,
// until one holds what was written there (WAIT counts the writes of its own connection), for up
// to replica.AckTimeout. On a Cluster it is the client itself, without a wait.
func (b *Breaker) acking(ctx context.Context) (redis.Cmdable, func(wait bool)) {
	c, ok := b.Redis.(*redis.Client)
	if !ok {
		return b.Redis, func(bool) {}
	}
	conn := c.Conn()
	return conn, func(wait bool) {
		if wait && replica.Connected(ctx, conn) > 0 {
			_ = conn.Do(ctx, "WAIT", 1, replica.AckTimeout.Milliseconds()).Err()
		}
		_ = conn.Close()
	}
}

// tripOn opens the breaker and pauses the queues, writing on rc (see trip); closedMeanwhile
// reports that a resume closed it before the trip was done.
func (b *Breaker) tripOn(ctx context.Context, rc redis.Cmdable, code, reason string) (opened bool, paused []string, closedMeanwhile bool, err error) {
	now := b.Now().UTC()
	state := State{Open: true, Code: code, Reason: reason, Since: now, ID: uuid.NewString()}
	data, _ := json.Marshal(state)
	id := ""
	for attempt := 0; id == "" && attempt < 3; attempt++ {
		opened, err = rc.SetNX(ctx, keys.Breaker, data, 0).Result()
		if err != nil {
			return false, nil, false, fmt.Errorf("open breaker: %w", err)
		}
		if opened {
			id = state.ID
			break
		}
		cur, err := readBreakerKey(ctx, rc)
		if err != nil {
			return false, nil, false, err
		}
		if cur.Open { // open already; closed between the two reads, try again
			id = cur.ID
			if id == "" {
				id = "-" // an opening written before openings had IDs
			}
		}
	}
	if id == "" {
		return false, nil, false, errors.New("open breaker: it kept closing under this trip")
	}
	for _, q := range b.Queues {
		ok, err := pause(ctx, rc, q, id, now)
		if err != nil {
			return opened, paused, false, fmt.Errorf("open breaker: %w", err)
		}
		if ok {
			paused = append(paused, q)
		}
	}
	if cur, err := readBreakerKey(ctx, rc); err == nil && !cur.Open {
		// A resume closed the breaker meanwhile: lift this trip's pauses that it did not see.
		for _, q := range paused {
			_, _ = unpause(ctx, rc, q, id)
		}
		return opened, paused, true, nil
	}
	return opened, paused, false, nil
}

// Start runs the prober until Shutdown: while the breaker is open it probes with a backoff from
// ProbeMin to ProbeMax; while it is closed it looks for stale pauses (sweepStale).
func (b *Breaker) Start(ctx context.Context) {
	delay := b.Config.ProbeMin
	var seen map[string]string // breaker marks found while it was closed, by queue
	lastSweep := b.Now()
	b.prober = loop.After(ctx, delay, func(ctx context.Context) time.Duration {
		state, err := readBreakerKey(ctx, b.Redis)
		if err != nil || !state.Open {
			if err == nil && b.Now().Sub(lastSweep) >= staleSweepInterval {
				lastSweep = b.Now()
				seen = b.sweepStale(ctx, seen)
			}
			delay = b.Config.ProbeMin
			return delay
		}
		seen = nil
		if b.Probe(ctx, state) {
			delay = b.Config.ProbeMin
			return delay
		}
		delay = min(delay*2, b.Config.ProbeMax)
		return delay
	})
}

// Shutdown stops the prober and waits for it.
func (b *Breaker) Shutdown() { b.prober.Stop() }

// Probe asks getBalance whether the account works again and resumes if so.
func (b *Breaker) Probe(ctx context.Context, state State) bool {
	balance, err := b.AnySolver.GetBalance(ctx)
	ok := err == nil && (state.Code != "ERROR_ZERO_BALANCE" || balance > 0)
	if err != nil {
		var apiErr *anysolver.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == "PROVIDER_BALANCE_NOT_SUPPORTED" {
			// No way to ask: let jobs through; the next account error trips again.
			ok = true
		}
	}
	if !ok {
		b.Log.Info("breaker still open", "code", state.Code, "balance", balance, "probe_error", errString(err))
		b.repause(ctx, state)
		return false
	}
	b.Resume(ctx, state)
	return true
}

// repause pauses again every queue of the open breaker that is not paused: a trip cut short (its
// worker died between opening the breaker and pausing the queues) is finished by the next probe.
// An operator's pause, and a queue already paused by this opening, are left as they are.
func (b *Breaker) repause(ctx context.Context, state State) {
	id := state.ID
	if id == "" {
		id = "-"
	}
	for _, q := range b.Queues {
		if _, err := pause(ctx, b.Redis, q, id, b.Now().UTC()); err != nil {
			b.Log.Warn("could not pause a queue of the open breaker", "queue", q, "err", err)
		}
	}
}

// Resume closes the breaker, if it is still the opening state named, then lifts the pauses of
// every queue the breaker paused, queue by queue.
//
// Like a trip, a resume waits where the primary has replicas until one holds it, so that a
// failover right after does not bring back a breaker and pauses it lifted (and resume twice).
func (b *Breaker) Resume(ctx context.Context, state State) {
	rc, acked := b.acking(ctx)
	closed, err := closeScript.Run(ctx, rc, []string{keys.Breaker}, state.ID).Int()
	if err != nil {
		acked(false)
		b.Log.Error("breaker could not close", "err", err)
		return
	}
	if closed == 0 {
		acked(false)
		b.Log.Info("breaker opened again meanwhile: its queues stay paused", "code", state.Code)
		return
	}
	resumed, err := liftPauses(ctx, rc, "")
	acked(true)
	if err != nil {
		// The prober lifts the rest once it finds them still marked (see sweepStale).
		b.Log.Error("breaker closed, but not every queue could be resumed yet", "err", err, "resumed_queues", resumed)
	}
	b.Log.Info("breaker closed: account works again; queues resumed", "code", state.Code, "resumed_queues", resumed)
	b.Observer.BreakerChanged(false, state.Code)
}

// liftPauses resumes every queue marked by the opening id ("" for any) and returns the queues it
// resumed.
func liftPauses(ctx context.Context, rc redis.Cmdable, id string) ([]string, error) {
	marks, err := breakerPauses(ctx, rc)
	if err != nil {
		return nil, err
	}
	var resumed []string
	for _, q := range slices.Sorted(maps.Keys(marks)) {
		ok, err := unpause(ctx, rc, q, id)
		if err != nil {
			return resumed, err
		}
		if ok {
			resumed = append(resumed, q)
		}
	}
	return resumed, nil
}

// staleSweepInterval is how often a prober looks for queues the breaker left paused while closed.
const staleSweepInterval = 30 * time.Second

// sweepStale resumes the queues whose breaker mark outlived the breaker: a resume that Redis
// failed halfway (a failover, say) or a worker that died in the middle of a trip leaves a queue
// paused with no breaker open to resume it. A mark is stale when this sweep and the one before,
// the breaker closed at both, saw it with the same opening's ID: a trip going on now marks its
// queues with a new ID, which no sweep has seen. It returns the marks seen now.
func (b *Breaker) sweepStale(ctx context.Context, before map[string]string) map[string]string {
	marks, err := breakerPauses(ctx, b.Redis)
	if err != nil {
		return nil
	}
	for q, id := range marks {
		if before[q] != id {
			continue
		}
		if ok, err := unpause(ctx, b.Redis, q, id); err == nil && ok {
			b.Log.Warn("resumed a queue the breaker left paused after it closed", "queue", q)
			delete(marks, q)
		}
	}
	return marks
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
