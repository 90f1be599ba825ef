package rideout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestUnreachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{errors.New("UNKNOWN: redis eval error: dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{errors.New("READONLY You can't write against a read only replica."), true},
		{outageError{errors.New("enqueue: task ID conflicts")}, true},
		{errors.New("redis: connection pool timeout"), true}, // a hung Redis holds every connection
		{errors.New("read tcp 127.0.0.1:1: use of closed network connection"), true},
		{fmt.Errorf("redrive x: %w", errors.New("job not found")), false},
		{errors.New("redrive x: its image body is gone from Redis"), false},
	} {
		require.Equal(t, tc.want, Unreachable(tc.err), tc.err.Error())
	}
}

// fakeClock is a ride-out's clock that moves only when the ride-out pauses, and keeps the
// pauses: tries and their spacing are counted, not timed.
type fakeClock struct {
	at     time.Time
	pauses []time.Duration
}

func (c *fakeClock) now() time.Time { return c.at }

func (c *fakeClock) sleep(_ context.Context, d time.Duration) bool {
	c.pauses = append(c.pauses, d)
	c.at = c.at.Add(d)
	return true
}

// TestRideOutIsBoundedAndSpaced: an operation Redis keeps refusing while it answers PING (a
// replica not promoted yet: READONLY; a restart: LOADING) is tried again after pauses that
// double from 50 ms to 1 s, and no more once the bound has passed.
func TestRideOutIsBoundedAndSpaced(t *testing.T) {
	t.Parallel()
	ms := time.Millisecond
	tests := []struct {
		name       string
		failures   int // the operation fails this many times, then succeeds
		refusal    string
		bound      time.Duration
		wantTries  int
		wantPauses []time.Duration
		wantErr    string
	}{
		{"recovers", 3, "READONLY You can't write against a read only replica.", time.Minute, 4,
			[]time.Duration{50 * ms, 100 * ms, 200 * ms}, ""},
		{"loading past the bound", 1000, "LOADING Redis is loading the dataset in memory", 5 * time.Second, 10,
			[]time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, time.Second, time.Second, time.Second, 450 * ms},
			"LOADING Redis is loading the dataset in memory (Redis did not serve it again within 5s)"},
		{"no primary past the bound", 1000, "MASTERDOWN Link with MASTER is down", 2 * time.Second, 7,
			[]time.Duration{50 * ms, 100 * ms, 200 * ms, 400 * ms, 800 * ms, 450 * ms}, "MASTERDOWN"},
		{"not Redis trouble", 1000, "redrive x: the job is not there", time.Minute, 1, nil, "the job is not there"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			mr := miniredis.RunT(t) // answers every PING
			rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { rc.Close() })
			clock := &fakeClock{at: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
			tries := 0
			waited, err := rider{rc: rc, now: clock.now, sleep: clock.sleep}.run(context.Background(), tt.bound, func() error {
				tries++
				if tries <= tt.failures {
					return errors.New(tt.refusal)
				}
				return nil
			})
			require.Equal(t, tt.wantTries, tries)
			require.Equal(t, tt.wantPauses, clock.pauses)
			require.Equal(t, len(tt.wantPauses) > 0, waited)
			if tt.wantErr == "" {
				require.NoError(t, err)
			} else {
				require.ErrorContains(t, err, tt.wantErr)
			}
		})
	}
}

// TestRideOutWaitsForPingWithoutTrying: while Redis does not answer PING, the operation is not
// tried again; the ride-out pauses, backing off, until the bound.
func TestRideOutWaitsForPingWithoutTrying(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { rc.Close() })
	mr.Close()
	clock := &fakeClock{at: time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)}
	tries := 0
	waited, err := rider{rc: rc, now: clock.now, sleep: clock.sleep}.run(context.Background(), 3*time.Second, func() error {
		tries++
		return fmt.Errorf("redrive: %w", syscall.ECONNREFUSED)
	})
	require.True(t, waited)
	require.Equal(t, 1, tries)
	require.Len(t, clock.pauses, 7) // 50+100+200+400+800 ms, 1 s, 450 ms
	require.ErrorContains(t, err, "within 3s")
}
