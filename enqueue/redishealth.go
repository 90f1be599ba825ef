package enqueue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for RedisHealthParams.
const (
	RedisCheckIntervalDefault = time.Second
	RedisCheckTimeoutDefault  = 2 * time.Second
)

// RedisHealth watches the Redis a process depends on and says once when it stops answering
// and once when it answers again, so that an outage is two log lines instead of one complaint
// per queue operation and per job. It does not reconnect anything: go-redis does, on the next
// command; jobs wait in Redis (or in their handler) meanwhile.
//
// A worker runs one and quiets asynq's own Redis errors while Redis is down; `solvequeue batch`
// runs one while it waits for outcomes. It lives on the producer side so that a producer can
// use it without importing the worker.
type RedisHealth struct {
	p     RedisHealthParams
	nudge chan struct{}
	stop  chan struct{}
	done  sync.WaitGroup

	mu        sync.Mutex
	down      bool
	downSince time.Time
}

// RedisHealthParams configure a RedisHealth.
type RedisHealthParams struct {
	// Redis is the connection watched. Required.
	Redis redis.UniversalClient
	// Logger receives "redis unreachable" (error) and "redis reachable again" (info).
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Interval is the time between two PINGs. Defaults to RedisCheckIntervalDefault.
	Interval time.Duration
	// Timeout bounds one PING. Defaults to RedisCheckTimeoutDefault.
	Timeout time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// NewRedisHealth returns a watcher; Start runs it.
func NewRedisHealth(p RedisHealthParams) *RedisHealth {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Interval <= 0 {
		p.Interval = RedisCheckIntervalDefault
	}
	if p.Timeout <= 0 {
		p.Timeout = RedisCheckTimeoutDefault
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &RedisHealth{p: p, nudge: make(chan struct{}, 1), stop: make(chan struct{})}
}

// Start pings Redis every Interval until ctx ends or Shutdown is called.
func (h *RedisHealth) Start(ctx context.Context) {
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		t := time.NewTicker(h.p.Interval)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			case <-h.nudge:
			}
			h.Check(ctx)
		}
	}()
}

// Shutdown stops the watcher and waits for it.
func (h *RedisHealth) Shutdown() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.done.Wait()
}

// Down reports whether the last check found Redis unreachable.
func (h *RedisHealth) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// Check pings Redis now and logs a change of state; it reports whether Redis answered.
func (h *RedisHealth) Check(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, h.p.Timeout)
	defer cancel()
	err := h.p.Redis.Ping(ctx).Err()
	if err != nil && ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded {
		return !h.Down() // the caller is going away: no news about Redis
	}
	h.set(err)
	return err == nil
}

// CheckSoon asks the running watcher for a check now instead of at its next tick.
func (h *RedisHealth) CheckSoon() {
	select {
	case h.nudge <- struct{}{}:
	default:
	}
}

// set records the result of a check and logs a change of state, once.
func (h *RedisHealth) set(err error) {
	now := h.p.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case err != nil && !h.down:
		h.down, h.downSince = true, now
		msg := err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("no answer to PING within %s", h.p.Timeout)
		}
		h.p.Logger.Error("redis unreachable: retrying until it answers; queued jobs and outcomes wait in Redis",
			"err", msg, "retry_every", h.p.Interval)
	case err == nil && h.down:
		h.down = false
		h.p.Logger.Info("redis reachable again", "down_for", now.Sub(h.downSince).Round(100*time.Millisecond))
	}
}
