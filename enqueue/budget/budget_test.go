package budget_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue/budget"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// clocked is a ledger on miniredis, whose clock the test moves: the window rolls by events the
// test makes, not by waiting.
func clocked(t *testing.T) (*budget.Ledger, *miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	mr.SetTime(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	return budget.New(rc), mr, rc
}

func TestCountBudgetRollsWithItsWindow(t *testing.T) {
	t.Parallel()
	l, mr, _ := clocked(t)
	ctx := context.Background()
	b := classify.Budget{Window: time.Minute, MaxCreateTasks: 3}
	for i := range 3 {
		_, ok, _, err := l.Reserve(ctx, "q", b, 0)
		require.NoError(t, err)
		require.True(t, ok, "createTask %d of 3", i+1)
		mr.SetTime(time.Date(2026, 11, 30, 12, 0, 10*(i+1), 0, time.UTC))
	}
	_, ok, retryIn, err := l.Reserve(ctx, "q", b, 0)
	require.NoError(t, err)
	require.False(t, ok, "a fourth createTask in the minute is refused")
	require.Greater(t, retryIn, time.Duration(0))
	require.LessOrEqual(t, retryIn, time.Minute+time.Second)

	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.Equal(t, int64(3), u.CreateTasks)
	require.Equal(t, int64(0), u.RemainingCreateTasks)
	require.True(t, u.Spent())

	// A minute and a bucket after the first createTask, it has left the window: room for one.
	mr.SetTime(time.Date(2026, 11, 30, 12, 1, 2, 0, time.UTC))
	_, ok, _, err = l.Reserve(ctx, "q", b, 0)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, _, err = l.Reserve(ctx, "q", b, 0)
	require.NoError(t, err)
	require.False(t, ok, "the second and third are still inside the window")
}

func TestMoneyBudgetSettlesWithTheReportedCost(t *testing.T) {
	t.Parallel()
	l, _, _ := clocked(t)
	ctx := context.Background()
	b := classify.Budget{Window: time.Hour, MaxCost: 0.01}
	r1, ok, _, err := l.Reserve(ctx, "q", b, 0.004)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, _, err = l.Reserve(ctx, "q", b, 0.004)
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, _, err = l.Reserve(ctx, "q", b, 0.004)
	require.NoError(t, err)
	require.False(t, ok, "0.012 would pass the cap of 0.01")

	require.NoError(t, l.Settle(ctx, "q", r1, 0.001), "the first task cost less than reserved")
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.InDelta(t, 0.005, u.Cost, 1e-9)
	require.InDelta(t, 0.005, u.RemainingCost, 1e-9)
	require.Equal(t, int64(-1), u.RemainingCreateTasks, "no count limit")
	_, ok, _, err = l.Reserve(ctx, "q", b, 0.004)
	require.NoError(t, err)
	require.True(t, ok, "0.009 fits")
}

func TestPauseLeavesOtherPausesAlone(t *testing.T) {
	t.Parallel()
	l, mr, rc := clocked(t)
	ctx := context.Background()
	b := classify.Budget{Window: time.Minute, MaxCreateTasks: 1}

	require.NoError(t, rc.Set(ctx, "asynq:{ops}:paused", "1", 0).Err(), "an operator paused ops")
	paused, err := l.Pause(ctx, "ops")
	require.NoError(t, err)
	require.False(t, paused)
	resumed, err := l.ResumeIfRoom(ctx, "ops", b, 0)
	require.NoError(t, err)
	require.False(t, resumed, "the operator's pause is never lifted")
	require.Equal(t, int64(1), rc.Exists(ctx, "asynq:{ops}:paused").Val())

	_, ok, _, err := l.Reserve(ctx, "q", b, 0)
	require.NoError(t, err)
	require.True(t, ok)
	paused, err = l.Pause(ctx, "q")
	require.NoError(t, err)
	require.True(t, paused)
	resumed, err = l.ResumeIfRoom(ctx, "q", b, 0)
	require.NoError(t, err)
	require.False(t, resumed, "no room yet")
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, u.Paused)

	mr.SetTime(time.Date(2026, 11, 30, 12, 1, 2, 0, time.UTC))
	resumed, err = l.ResumeIfRoom(ctx, "q", b, 0)
	require.NoError(t, err)
	require.True(t, resumed)
	require.Equal(t, int64(0), rc.Exists(ctx, "asynq:{q}:paused", budget.PausedKey("q")).Val())
}

// TestReserveIsAtomicAcrossClients runs many clients against a real redis-server at once: the
// count never passes the cap, whatever the interleaving.
func TestReserveIsAtomicAcrossClients(t *testing.T) {
	t.Parallel()
	srv := enqueuetest.Redis(t)
	ctx := context.Background()
	b := classify.Budget{Window: time.Hour, MaxCreateTasks: 50, MaxCost: 1}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rc.Close() })
		l := budget.New(rc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, ok, _, err := l.Reserve(ctx, "shared", b, 0.001)
				if err != nil {
					t.Error(err)
					return
				}
				if ok {
					granted.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	require.Equal(t, int64(50), granted.Load(), "160 tries, exactly the 50 the budget allows")
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { rc.Close() })
	u, err := budget.New(rc).Read(ctx, "shared", b)
	require.NoError(t, err)
	require.Equal(t, int64(50), u.CreateTasks)
	require.InDelta(t, 0.05, u.Cost, 1e-9)
}
