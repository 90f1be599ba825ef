// Package loop runs the worker's background loops (the breaker's prober, the budget watcher, the
// balance reader, the dead-letter mirror, the tally's flush): a function called on a schedule in
// a goroutine of its own until its context ends or the loop is stopped.
//
// It does not recover panics nor retry: what the function does with an error is its own business.
package loop

import (
	"context"
	"sync"
	"time"
)

// Loop is one running background loop. Stop ends it; a nil *Loop is a loop that never ran.
type Loop struct {
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func newLoop() *Loop { return &Loop{stop: make(chan struct{}), done: make(chan struct{})} }

// Every calls fn on every tick of a ticker of interval (a call that runs long makes the ticks it
// overlaps one), and first at once when immediately is set, until ctx ends or Stop is called. A
// tick after the end does not call fn.
func Every(ctx context.Context, interval time.Duration, immediately bool, fn func(context.Context)) *Loop {
	l := newLoop()
	go func() {
		defer close(l.done)
		t := time.NewTicker(interval)
		defer t.Stop()
		if immediately {
			fn(ctx)
		}
		for {
			select {
			case <-l.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				fn(ctx)
			}
		}
	}()
	return l
}

// After calls fn once first has passed, then again each time the wait fn returned has passed
// (a backoff is fn's to compute), until ctx ends or Stop is called.
func After(ctx context.Context, first time.Duration, fn func(context.Context) time.Duration) *Loop {
	l := newLoop()
	go func() {
		defer close(l.done)
		wait := first
		for {
			t := time.NewTimer(wait)
			select {
			case <-l.stop:
				t.Stop()
				return
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			wait = fn(ctx)
		}
	}()
	return l
}

// Stop ends the loop and returns once its goroutine has: a call of fn under way is waited for,
// not canceled (cancel the loop's context for that). Stop may be called more than once.
func (l *Loop) Stop() {
	if l == nil {
		return
	}
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// Sleep waits d unless ctx ends first, and then returns ctx's error.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
