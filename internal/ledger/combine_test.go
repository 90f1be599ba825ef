package ledger

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCombinerGathersCallsBehindARun holds a combiner's first run open while more calls arrive:
// they all go into the next run, in one batch, and each caller gets its own answer. A lone call
// runs at once (it does not wait for company), and a failed run fails every call in it.
func TestCombinerGathersCallsBehindARun(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var runs [][]int
	c := newCombiner(0, func(_ context.Context, key string, reqs []int) ([]int, error) {
		mu.Lock()
		runs = append(runs, append([]int(nil), reqs...))
		first := len(runs) == 1
		mu.Unlock()
		if first {
			<-release
		}
		if key == "broken" {
			return nil, errors.New("redis is down")
		}
		out := make([]int, len(reqs))
		for i, r := range reqs {
			out[i] = r * 10
		}
		return out, nil
	})
	ctx := context.Background()

	firstDone := make(chan int)
	go func() {
		v, err := c.do(ctx, "q", 1)
		if err != nil {
			t.Error(err)
		}
		firstDone <- v
	}()
	// The first call's run is in flight (and held) once it is recorded.
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(runs) == 1 }, 10*time.Second, time.Millisecond)

	const behind = 20
	var wg sync.WaitGroup
	got := make([]int, behind)
	for i := range behind {
		wg.Go(func() {
			v, err := c.do(ctx, "q", 100+i)
			if err != nil {
				t.Error(err)
			}
			got[i] = v
		})
	}
	// Every call behind the run is gathering in one batch before the run is let go.
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		q := c.waiting["q"]
		return len(q) == 1 && len(q[0].reqs) == behind
	}, 10*time.Second, time.Millisecond)
	close(release)
	require.Equal(t, 10, <-firstDone)
	wg.Wait()
	for i, v := range got {
		require.Equal(t, (100+i)*10, v, "call %d got its own answer", i)
	}
	mu.Lock()
	require.Len(t, runs, 2, "one run for the first call, one for the twenty behind it")
	require.Len(t, runs[1], behind)
	mu.Unlock()

	_, err := c.do(ctx, "broken", 7)
	require.ErrorContains(t, err, "redis is down")
	c.mu.Lock()
	require.Empty(t, c.busy, "no run is left in flight")
	require.Empty(t, c.waiting)
	c.mu.Unlock()
}

// TestCombinerBoundsABatch: calls past batchMax gather in the next batch.
func TestCombinerBoundsABatch(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var mu sync.Mutex
	var sizes []int
	c := newCombiner(0, func(_ context.Context, _ string, reqs []int) ([]bool, error) {
		mu.Lock()
		sizes = append(sizes, len(reqs))
		first := len(sizes) == 1
		mu.Unlock()
		if first {
			<-release
		}
		return make([]bool, len(reqs)), nil
	})
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = c.do(ctx, "q", 0) })
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(sizes) == 1 }, 10*time.Second, time.Millisecond)
	for range batchMax + 3 {
		wg.Go(func() { _, _ = c.do(ctx, "q", 1) })
	}
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		n := 0
		for _, b := range c.waiting["q"] {
			n += len(b.reqs)
		}
		return n == batchMax+3
	}, 10*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{1, batchMax, 3}, sizes)
}
