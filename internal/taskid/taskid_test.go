package taskid

import (
	"context"
	"sync"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/stretchr/testify/require"
)

func TestPermutationIsABijection(t *testing.T) {
	t.Parallel()
	p := newPermutation([]byte("0123456789abcdef0123456789abcdef"))
	seen := make(map[uint64]bool, 100_000)
	for n := uint64(0); n < 100_000; n++ {
		id := p.encode(n)
		require.Less(t, id, uint64(1)<<Bits)
		require.False(t, seen[id], "two counters gave taskId %d", id)
		seen[id] = true
		require.Equal(t, n, p.decode(id))
	}
	for _, n := range []uint64{1<<Bits - 1, 1 << 40, 123456789012345} {
		require.Equal(t, n, p.decode(p.encode(n)))
	}
	// Consecutive counters give taskIds that say nothing about each other.
	require.NotEqual(t, p.encode(2)-p.encode(1), p.encode(3)-p.encode(2))
}

// TestTaskIDsUniqueAcrossGateways runs two gateways' allocators on one Redis, concurrently and
// across a "restart" (a fresh allocator), and checks every taskId is positive, below 2^53 and
// given once.
func TestTaskIDsUniqueAcrossGateways(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()

	var mu sync.Mutex
	seen := map[int64]bool{}
	run := func(a *Allocator, n int) {
		for range n {
			id, err := a.Next(ctx)
			require.NoError(t, err)
			require.Positive(t, id)
			require.LessOrEqual(t, id, int64(1)<<53-1)
			mu.Lock()
			require.False(t, seen[id], "taskId %d given twice", id)
			seen[id] = true
			mu.Unlock()
		}
	}
	a, b := &Allocator{rc: rc}, &Allocator{rc: rc}
	var wg sync.WaitGroup
	for _, alloc := range []*Allocator{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(alloc, 500)
		}()
	}
	wg.Wait()
	run(&Allocator{rc: rc}, 100) // a restarted gateway
	require.Len(t, seen, 2100)

	// A permutation key that is not ours is refused, not silently replaced.
	require.NoError(t, rc.Set(ctx, keys.GatewayTaskIDSecret, "zz", 0).Err())
	_, err := (&Allocator{rc: rc}).Next(ctx)
	require.ErrorContains(t, err, "damaged")

	// The counter's end is an error, never a wrapped-around taskId.
	mr2 := miniredis.RunT(t)
	rc2 := redis.NewClient(&redis.Options{Addr: mr2.Addr()})
	t.Cleanup(func() { rc2.Close() })
	require.NoError(t, rc2.Set(ctx, keys.GatewayTaskIDCounter, 1<<Bits, 0).Err())
	_, err = (&Allocator{rc: rc2}).Next(ctx)
	require.ErrorIs(t, err, ErrExhausted)
}
