package attempt

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestWaitsEndOnlyTheWaitsWhoseContextEnded: of three attempts waiting an hour, the two whose
// contexts end are handed to ended, once each, and leave the list; the third stays armed for its
// timer to claim, and the watch stops once nothing waits.
func TestWaitsEndOnlyTheWaitsWhoseContextEnded(t *testing.T) {
	t.Parallel()
	endedCh := make(chan *attempt, 3)
	w := newWaits(time.Millisecond, func(*attempt) { t.Error("a timer an hour away fired") }, func(a *attempt) { endedCh <- a })
	attempts := make([]*attempt, 3)
	cancels := make([]context.CancelFunc, 3)
	for i := range attempts {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		attempts[i], cancels[i] = &attempt{ctx: ctx}, cancel
		require.True(t, w.arm(attempts[i], time.Hour))
	}
	require.Equal(t, 3, w.waitingCount())

	cancels[0]()
	cancels[2]()
	got := map[*attempt]bool{}
	for len(got) < 2 {
		select {
		case a := <-endedCh:
			got[a] = true
		case <-time.After(30 * time.Second):
			t.Fatal("the waits whose contexts ended were not ended")
		}
	}
	require.True(t, got[attempts[0]] && got[attempts[2]], "the two waits whose contexts ended")
	require.Equal(t, 1, w.waitingCount())
	require.False(t, w.claim(attempts[0]), "an ended wait is not claimed again")
	require.True(t, w.claim(attempts[1]), "the wait still armed is claimed by its timer")
	require.False(t, w.claim(attempts[1]), "and only once")
	attempts[1].timer.Stop()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.watching
	}, 10*time.Second, time.Millisecond, "the watch stops once nothing waits")
	select {
	case a := <-endedCh:
		t.Fatalf("a wait ended twice: %p", a)
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, w.arm(&attempt{ctx: ctx}, time.Hour), "no wait is armed on an ended context")
}

// BenchmarkWatchingAContext gives the memory each waiting attempt costs to be told its context
// ended (the README quotes it): context.AfterFunc registered on a context made as
// asynq makes a job's (a value, then a deadline; its Done channel already made, as asynq's own
// select makes it), against taking a place on waits' list. B/op is per waiting attempt; the
// registrations stay in place until the end, as thousands of waits do.
func BenchmarkWatchingAContext(b *testing.B) {
	type key struct{}
	jobContexts := func(n int) []context.Context {
		ctxs := make([]context.Context, n)
		for i := range ctxs {
			ctx, cancel := context.WithDeadline(context.WithValue(context.Background(), key{}, i), time.Now().Add(time.Hour))
			b.Cleanup(cancel)
			ctx.Done()
			ctxs[i] = ctx
		}
		return ctxs
	}
	b.Run("context.AfterFunc", func(b *testing.B) {
		ctxs := jobContexts(b.N)
		stops := make([]func() bool, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			stops[i] = context.AfterFunc(ctxs[i], func() {})
		}
		b.StopTimer()
		for _, stop := range stops {
			stop()
		}
	})
	b.Run("waits", func(b *testing.B) {
		ctxs := jobContexts(b.N)
		w := newWaits(time.Hour, func(*attempt) {}, func(*attempt) {})
		attempts := make([]*attempt, b.N)
		for i := range attempts {
			attempts[i] = &attempt{ctx: ctxs[i], timer: time.AfterFunc(time.Hour, func() {})} // the poll timer both need
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, a := range attempts {
			w.arm(a, time.Hour)
		}
		b.StopTimer()
		for _, a := range attempts {
			w.claim(a)
			a.timer.Stop()
		}
	})
}
