package enqueue

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
)

// RideOutDefault bounds how long a one-shot change (a redrive, a purge) waits for a Redis that
// stopped answering in its middle to answer again before it gives up: long enough for a
// Sentinel to promote a replica (its down-after, 5 to 30 s in production, and a few seconds of
// election), not for ever.
const RideOutDefault = 2 * time.Minute

// rideOutPoll is the wait between two PINGs while Redis does not answer.
const rideOutPoll = 250 * time.Millisecond

// outageError marks an error met while Redis was unreachable, even if it answers again by the
// time the caller looks.
type outageError struct{ error }

func (e outageError) Unwrap() error { return e.error }

// rideOut runs op. When op fails because Redis did not answer (its primary died, a failover is
// under way: go-redis's own few retries are spent within a second), it waits until Redis
// answers a PING again and runs op once more, for up to bound in all. Any other error is op's
// own and is returned at once. op must be safe to run again after a failure (each step of it
// idempotent, or undone when it fails). It reports whether it had to wait.
func rideOut(ctx context.Context, rc redis.UniversalClient, bound time.Duration, op func() error) (waited bool, err error) {
	deadline := time.Now().Add(bound)
	for {
		err = op()
		if err == nil || ctx.Err() != nil || (!unreachable(err) && rc.Ping(ctx).Err() == nil) {
			return waited, err
		}
		waited = true
		for rc.Ping(ctx).Err() != nil {
			if time.Now().After(deadline) {
				return waited, fmt.Errorf("%w (Redis did not answer again within %s)", err, bound)
			}
			select {
			case <-ctx.Done():
				return waited, err
			case <-time.After(rideOutPoll):
			}
		}
	}
}

// unreachable reports whether err says Redis could not be reached or could not serve writes
// (a network error, a replica that is not promoted yet, a server still loading its data, a
// hung Redis holding every pooled connection until its read timeout). asynq passes go-redis's
// errors on as text, so the text is read too. Waiting on a job (isTransient) and riding out a
// failover (rideOut) both read Redis trouble this one way.
func unreachable(err error) bool {
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
