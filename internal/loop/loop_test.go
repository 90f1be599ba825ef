package loop

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestEveryCallsAtOnceWhenAskedThenOnEachTick(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		immediately bool
		wantFirst   int64 // calls before the first tick can have come (the interval is an hour)
	}{
		{"at once", true, 1},
		{"on the first tick", false, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int64
			called := make(chan struct{}, 1)
			l := Every(context.Background(), time.Hour, tc.immediately, func(context.Context) {
				calls.Add(1)
				called <- struct{}{}
			})
			if tc.immediately {
				<-called
			}
			l.Stop()
			require.Equal(t, tc.wantFirst, calls.Load())
			l.Stop() // a second Stop returns at once
		})
	}
}

func TestAfterWaitsWhatFnReturns(t *testing.T) {
	t.Parallel()
	var waits []time.Duration
	done := make(chan struct{})
	l := After(context.Background(), time.Millisecond, func(context.Context) time.Duration {
		waits = append(waits, time.Duration(len(waits)+1)*time.Millisecond)
		if len(waits) == 3 {
			close(done)
			return time.Hour
		}
		return waits[len(waits)-1]
	})
	<-done
	l.Stop()
	require.Len(t, waits, 3, "fn runs again after each wait it returned, and not after the hour")
}

func TestLoopEndsWithItsContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	every := Every(ctx, time.Hour, false, func(context.Context) {})
	after := After(ctx, time.Hour, func(context.Context) time.Duration { return time.Hour })
	cancel()
	<-every.done
	<-after.done
	every.Stop()
	after.Stop()
	var none *Loop
	none.Stop() // a loop that never ran stops at once
}

func TestSleepEndsWithItsContext(t *testing.T) {
	t.Parallel()
	require.NoError(t, Sleep(context.Background(), time.Millisecond), "waited all of d")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled, "an ended context ends the wait at once")
}
