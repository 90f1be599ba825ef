package redisconn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults for HealthParams.
const (
	CheckIntervalDefault = time.Second
	CheckTimeoutDefault  = 2 * time.Second
)

// Health watches the Redis a process depends on and says once when it stops answering
// and once when it answers again, so that an outage is two log lines instead of one complaint
// per queue operation and per job. It does not reconnect anything: go-redis does, on the next
// command; jobs wait in Redis (or in their handler) meanwhile.
//
// A worker runs one and quiets asynq's own Redis errors while Redis is down; `solvequeue batch`
// runs one while it waits for outcomes.
type Health struct {
	p     HealthParams
	nudge chan struct{}
	stop  chan struct{}
	done  sync.WaitGroup

	// turn lets one PING run at a time, so that answers are recorded in the order they came.
	// conn and stopped belong to the holder of turn.
	turn     chan struct{}
	conn     *redis.Conn // a connection of its own, when Redis is a *redis.Client; nil until needed
	answered bool        // a PING on conn was answered: a failure on it is news, not the pool's
	stopped  bool        // Shutdown gave conn back: later checks use the shared pool

	mu        sync.Mutex
	down      bool
	downSince time.Time
	pinging   bool   // a PING is in flight
	ended     uint64 // PINGs ended with news about Redis
	lastOK    bool   // whether the last of them was answered
}

// HealthParams configure a Health.
type HealthParams struct {
	// Redis is the connection watched. Required.
	Redis redis.UniversalClient
	// Logger receives "redis unreachable" (error) and "redis reachable again" (info).
	// Defaults to slog.Default().
	Logger *slog.Logger
	// Interval is the time between two PINGs. Defaults to CheckIntervalDefault.
	Interval time.Duration
	// Timeout bounds one PING. Defaults to CheckTimeoutDefault.
	Timeout time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// NewHealth returns a watcher; Start runs it.
func NewHealth(p HealthParams) *Health {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Interval <= 0 {
		p.Interval = CheckIntervalDefault
	}
	if p.Timeout <= 0 {
		p.Timeout = CheckTimeoutDefault
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Health{p: p, nudge: make(chan struct{}, 1), stop: make(chan struct{}), turn: make(chan struct{}, 1)}
}

// Start pings Redis every Interval until ctx ends or Shutdown is called.
func (h *Health) Start(ctx context.Context) {
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

// Shutdown stops the watcher, waits for it and gives its connection back to the pool.
func (h *Health) Shutdown() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	h.done.Wait()
	h.turn <- struct{}{}
	defer func() { <-h.turn }()
	h.stopped = true
	if h.conn != nil {
		_ = h.conn.Close()
		h.conn = nil
	}
}

// Down reports whether the last check found Redis unreachable.
func (h *Health) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.down
}

// Check pings Redis now and logs a change of state; it reports whether Redis answered.
//
// An outage and its end are said once each, however many callers check at once while go-redis
// reconnects, because the evidence comes in order: one PING runs at a time, and a caller that
// waited while a PING begun after its question ran takes that answer instead of sending
// another. The PINGs use a connection of their own, kept while Redis answers, so that once
// Redis is back no late failure of the shared pool (a dial begun during the outage, or go-redis
// failing new dials at once with its last dial error until its next probe) reads as a new
// outage: while Redis is taken for up, a failure on a connection that never answered is
// confirmed on a fresh one first, while a failure on the kept connection is news at once.
func (h *Health) Check(ctx context.Context) bool {
	h.mu.Lock()
	asked := h.ended
	if h.pinging {
		asked++ // the PING in flight began before the question
	}
	h.mu.Unlock()
	select {
	case h.turn <- struct{}{}:
	case <-ctx.Done():
		return !h.Down()
	}
	defer func() { <-h.turn }()
	h.mu.Lock()
	if h.ended > asked {
		defer h.mu.Unlock()
		return h.lastOK
	}
	h.pinging = true
	wasDown := h.down
	h.mu.Unlock()

	gone, trusted, err := h.ping(ctx)
	if !gone && err != nil && !wasDown && !trusted {
		gone, _, err = h.ping(ctx) // on a fresh connection: ping dropped the one that failed
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pinging = false
	if gone {
		return !h.down // the caller is going away: no news about Redis
	}
	h.ended++
	h.lastOK = err == nil
	h.set(err)
	return err == nil
}

// ping sends one PING, bounded by Timeout, on the watcher's own connection when it can have
// one; a connection that fails is dropped. gone reports that the caller's ctx ended first, so
// the error says nothing about Redis; trusted, that the PING went over a connection that had
// answered before, so a failure is Redis's, not the pool's. The caller holds turn.
func (h *Health) ping(ctx context.Context) (gone, trusted bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, h.p.Timeout)
	defer cancel()
	if c, ok := h.p.Redis.(*redis.Client); ok && h.conn == nil && !h.stopped {
		h.conn, h.answered = c.Conn(), false
	}
	if h.conn != nil {
		trusted = h.answered
		err = h.conn.Ping(ctx).Err()
		h.answered = err == nil
		if err != nil {
			_ = h.conn.Close()
			h.conn = nil
		}
	} else {
		err = h.p.Redis.Ping(ctx).Err()
	}
	return err != nil && ctx.Err() != nil && context.Cause(ctx) != context.DeadlineExceeded, trusted, err
}

// CheckSoon asks the running watcher for a check now instead of at its next tick.
func (h *Health) CheckSoon() {
	select {
	case h.nudge <- struct{}{}:
	default:
	}
}

// set records the result of a check and logs a change of state, once. h.mu is held.
func (h *Health) set(err error) {
	now := h.p.Now()
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
