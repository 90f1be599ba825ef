package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// Redis keys of the account breaker, shared by every worker on one Redis: one trip stops them
// all and one resume starts them all.
const (
	BreakerKey       = "solvequeue:breaker"        // JSON BreakerState while open
	BreakerPausedKey = "solvequeue:breaker:paused" // set of the queues the breaker paused
)

// Defaults for BreakerConfig.
const (
	BreakerProbeMinDefault = 3 * time.Second
	BreakerProbeMaxDefault = 30 * time.Second
)

// BreakerConfig configures the account breaker.
//
// ERROR_ZERO_BALANCE, ERROR_KEY_DOES_NOT_EXIST and ERROR_USER_BANNED are about the account, not
// the job: every job behind them would hit the same wall. The job that met the error gets its
// classified decision; then the breaker pauses the worker's queues with asynq's queue pause
// (visible and reversible in the web UI), so waiting jobs are kept instead of burned, and jobs
// already running that meet the same error are held (throttled) instead of ended. It probes
// getBalance with backoff and resumes the queues it paused itself (never an operator's pause)
// once the balance is positive or, for the key and ban codes, once a probe succeeds.
type BreakerConfig struct {
	// Disabled turns the breaker off: account errors then only end the job that met them.
	Disabled bool
	// ProbeMin is the first wait between probes. Defaults to 3 s.
	ProbeMin time.Duration
	// ProbeMax caps the wait between probes. Defaults to 30 s.
	ProbeMax time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c BreakerConfig) WithDefaults() BreakerConfig {
	if c.ProbeMin <= 0 {
		c.ProbeMin = BreakerProbeMinDefault
	}
	if c.ProbeMax < c.ProbeMin {
		c.ProbeMax = max(BreakerProbeMaxDefault, c.ProbeMin)
	}
	return c
}

// BreakerState is the breaker as stored in Redis.
type BreakerState struct {
	Open         bool      `json:"open"`
	Code         string    `json:"code,omitempty"`
	Reason       string    `json:"reason,omitempty"`
	Since        time.Time `json:"since,omitzero"`
	PausedQueues []string  `json:"pausedQueues,omitempty"`
}

// ReadBreaker reads the breaker's state from Redis.
func ReadBreaker(ctx context.Context, rc redis.UniversalClient) (BreakerState, error) {
	raw, err := rc.Get(ctx, BreakerKey).Bytes()
	if errors.Is(err, redis.Nil) {
		return BreakerState{}, nil
	}
	if err != nil {
		return BreakerState{}, fmt.Errorf("read breaker: %w", err)
	}
	var s BreakerState
	if err := json.Unmarshal(raw, &s); err != nil {
		return BreakerState{}, fmt.Errorf("read breaker: %w", err)
	}
	s.Open = true
	s.PausedQueues, err = rc.SMembers(ctx, BreakerPausedKey).Result()
	if err != nil {
		return s, fmt.Errorf("read breaker: %w", err)
	}
	return s, nil
}

type breakerParams struct {
	cfg       BreakerConfig
	rc        redis.UniversalClient
	anysolver *anysolver.Client
	queues    []string
	log       *slog.Logger
	observer  Observer
	now       func() time.Time
}

type breaker struct {
	breakerParams
	stop chan struct{}
	done sync.WaitGroup
}

func newBreaker(p breakerParams) *breaker {
	p.cfg = p.cfg.WithDefaults()
	return &breaker{breakerParams: p, stop: make(chan struct{})}
}

// tripScript opens the breaker (if closed) and pauses the given queues that nobody paused yet,
// recording them as the breaker's own, in one step: a resume running at the same moment can
// never forget a queue that the trip is pausing. It returns {opened, paused queues...}.
//
// The pause is asynq's own (the key asynq:{<queue>}:paused that Inspector.PauseQueue sets in
// v0.26), so the web UI shows it and an operator can lift it there.
var tripScript = redis.NewScript(`
local opened = 0
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then opened = 1 end
local out = {opened}
for i = 3, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2], 'NX') then
    redis.call('SADD', KEYS[2], ARGV[i])
    table.insert(out, ARGV[i])
  end
end
return out`)

// resumeScript unpauses the queues the breaker paused and closes it, in one step. It returns
// the queues it resumed.
var resumeScript = redis.NewScript(`
local queues = redis.call('SMEMBERS', KEYS[2])
for _, q in ipairs(queues) do
  redis.call('DEL', 'asynq:{' .. q .. '}:paused')
end
redis.call('DEL', KEYS[1], KEYS[2])
return queues`)

// ResetBreaker closes the account breaker by an operator's hand, as a successful probe does: the
// queues it paused are resumed (never one an operator paused) and returned. Nothing is checked
// first: if the account is still unusable, the next job that meets the error opens it again.
func ResetBreaker(ctx context.Context, rc redis.UniversalClient) ([]string, error) {
	resumed, err := resumeScript.Run(ctx, rc, []string{BreakerKey, BreakerPausedKey}).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("reset breaker: %w", err)
	}
	return resumed, nil
}

func pausedKey(queue string) string { return "asynq:{" + queue + "}:paused" }

// trip opens the breaker for code and pauses this worker's queues. It reports whether this
// call opened it; when it was open already the caller's job is held rather than ended.
func (b *breaker) trip(ctx context.Context, code, reason string) (opened bool, err error) {
	state, _ := json.Marshal(BreakerState{Open: true, Code: code, Reason: reason, Since: b.now().UTC()})
	keys := []string{BreakerKey, BreakerPausedKey}
	// ARGV[i] for i >= 3 is the queue name of KEYS[i].
	args := []any{state, b.now().Unix()}
	for _, q := range b.queues {
		keys = append(keys, pausedKey(q))
		args = append(args, q)
	}
	res, err := tripScript.Run(ctx, b.rc, keys, args...).Slice()
	if err != nil || len(res) == 0 {
		return false, fmt.Errorf("open breaker: %w", err)
	}
	opened = res[0] == int64(1)
	paused := make([]string, 0, len(res)-1)
	for _, q := range res[1:] {
		if s, ok := q.(string); ok {
			paused = append(paused, s)
		}
	}
	if opened {
		b.log.Warn("breaker open: AnySolver account problem; queues paused, waiting jobs kept",
			"code", code, "reason", reason, "paused_queues", paused)
		b.observer.BreakerChanged(true, code)
	}
	return opened, nil
}

// start runs the prober until shutdown.
func (b *breaker) start(ctx context.Context) {
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		delay := b.cfg.ProbeMin
		for {
			select {
			case <-b.stop:
				return
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			state, err := ReadBreaker(ctx, b.rc)
			if err != nil || !state.Open {
				delay = b.cfg.ProbeMin
				continue
			}
			if b.probe(ctx, state) {
				delay = b.cfg.ProbeMin
				continue
			}
			delay = min(delay*2, b.cfg.ProbeMax)
		}
	}()
}

func (b *breaker) shutdown() {
	close(b.stop)
	b.done.Wait()
}

// probe asks getBalance whether the account works again and resumes if so.
func (b *breaker) probe(ctx context.Context, state BreakerState) bool {
	balance, err := b.anysolver.GetBalance(ctx)
	ok := err == nil && (state.Code != "ERROR_ZERO_BALANCE" || balance > 0)
	if err != nil {
		var apiErr *anysolver.APIError
		if errors.As(err, &apiErr) && apiErr.ErrorCode == "PROVIDER_BALANCE_NOT_SUPPORTED" {
			// No way to ask: let jobs through; the next account error trips again.
			ok = true
		}
	}
	if !ok {
		b.log.Info("breaker still open", "code", state.Code, "balance", balance, "probe_error", errString(err))
		return false
	}
	b.resume(ctx, state)
	return true
}

// resume unpauses the queues the breaker paused and closes it.
func (b *breaker) resume(ctx context.Context, state BreakerState) {
	resumed, err := resumeScript.Run(ctx, b.rc, []string{BreakerKey, BreakerPausedKey}).StringSlice()
	if err != nil {
		b.log.Error("breaker could not close", "err", err)
		return
	}
	b.log.Info("breaker closed: account works again; queues resumed", "code", state.Code, "resumed_queues", resumed)
	b.observer.BreakerChanged(false, state.Code)
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
