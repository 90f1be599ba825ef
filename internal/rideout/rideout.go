// Package rideout carries a one-shot change to Redis (a redrive, a purge) through a Redis that
// stops answering in its middle, as during a Sentinel failover, and tells Redis trouble (a
// network error, a replica not promoted yet, a server still loading) from an operation's own
// errors.
package rideout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/loop"
)

// Default bounds how long a one-shot change (a redrive, a purge) waits for a Redis that
// stopped answering, or serving writes, in its middle to serve it again before it gives up: long enough for a
// Sentinel to promote a replica (its down-after, 5 to 30 s in production, and a few seconds of
// election), not for ever.
const Default = 2 * time.Minute

// The pause between two tries of a ride-out starts at rideOutFirstPause and doubles up to
// rideOutMaxPause: a failover that lasts a moment costs a moment, a longer one costs a try a
// second, never a burst of tries against a Redis that keeps refusing them.
const (
	rideOutFirstPause = 50 * time.Millisecond
	rideOutMaxPause   = time.Second
)

// outageError marks an error met while Redis was unreachable, even if it answers again by the
// time the caller looks.
type outageError struct{ error }

func (e outageError) Unwrap() error { return e.error }

// Outage marks err as met while Redis was unreachable, so that Unreachable reports it even if
// Redis answers again by the time the caller looks.
func Outage(err error) error { return outageError{err} }

// Run runs op. When op fails because Redis did not answer or could not serve it (its primary
// died, a failover is under way and a replica answers READONLY, a restarted Redis is LOADING:
// go-redis's own few retries are spent within a second), it runs op again once Redis answers a
// PING, pausing between tries as rideOutFirstPause and rideOutMaxPause say, until bound has passed
// since the first try: a Redis that answers PING but keeps refusing the operation is given the
// same bound as one that does not answer at all. Any other error is op's own and is returned at
// once. op must be safe to run again after a failure (each step of it idempotent, or undone when
// it fails). It reports whether it had to wait.
func Run(ctx context.Context, rc redis.UniversalClient, bound time.Duration, op func() error) (waited bool, err error) {
	return rider{rc: rc, now: time.Now, sleep: sleepFor}.run(ctx, bound, op)
}

// rider is a ride-out's Redis and clock: a test gives it a clock of its own, to count tries and
// pauses instead of measuring them.
type rider struct {
	rc  redis.UniversalClient
	now func() time.Time
	// sleep waits d, or less when ctx ends first; it reports whether it waited all of d.
	sleep func(ctx context.Context, d time.Duration) bool
}

func (r rider) run(ctx context.Context, bound time.Duration, op func() error) (waited bool, err error) {
	deadline := r.now().Add(bound)
	pause := rideOutFirstPause
	for {
		err = op()
		if err == nil || ctx.Err() != nil || (!Unreachable(err) && r.rc.Ping(ctx).Err() == nil) {
			return waited, err
		}
		waited = true
		for {
			left := deadline.Sub(r.now())
			if left <= 0 {
				return waited, fmt.Errorf("%w (Redis did not serve it again within %s)", err, bound)
			}
			if !r.sleep(ctx, min(pause, left)) {
				return waited, err
			}
			pause = min(2*pause, rideOutMaxPause)
			if r.rc.Ping(ctx).Err() == nil {
				break
			}
		}
	}
}

// Unreachable reports whether err says Redis could not be reached or could not serve writes
// (a network error, a replica that is not promoted yet, a server still loading its data, a
// hung Redis holding every pooled connection until its read timeout). asynq passes go-redis's
// errors on as text, so the text is read too. Waiting on a job (package enqueue) and riding out a
// failover (Run) both read Redis trouble this one way.
func Unreachable(err error) bool {
	var ne net.Error
	var oe outageError
	if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, redis.ErrClosed) {
		return true
	}
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "i/o timeout", "Conn is in a bad state",
		"READONLY", "LOADING", "MASTERDOWN", "EOF", "connection pool timeout", "use of closed network connection"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// sleepFor waits d unless ctx ends first, and reports whether it waited all of d.
func sleepFor(ctx context.Context, d time.Duration) bool { return loop.Sleep(ctx, d) == nil }
