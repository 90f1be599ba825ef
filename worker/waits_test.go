package worker

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
