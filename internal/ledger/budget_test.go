package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// clocked is a ledger on miniredis, whose clock the test moves: the window rolls by events the
// test makes, not by waiting.
func clocked(t *testing.T) (*ledger.Ledger, *miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	mr.SetTime(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	return ledger.New(rc), mr, rc
}

func TestCountBudgetRollsWithItsWindow(t *testing.T) {
	t.Parallel()
	l, mr, _ := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Minute, MaxCreateTasks: 3}
	for i := range 3 {
		_, ok, _, err := l.Reserve(ctx, "q", b, "")
		require.NoError(t, err)
		require.True(t, ok, "createTask %d of 3", i+1)
		mr.SetTime(time.Date(2026, 11, 30, 12, 0, 10*(i+1), 0, time.UTC))
	}
	_, ok, retryIn, err := l.Reserve(ctx, "q", b, "")
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
	_, ok, _, err = l.Reserve(ctx, "q", b, "")
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, _, err = l.Reserve(ctx, "q", b, "")
	require.NoError(t, err)
	require.False(t, ok, "the second and third are still inside the window")
}

func TestMoneyBudgetSettlesWithTheReportedCost(t *testing.T) {
	t.Parallel()
	l, _, _ := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Hour, MaxCost: 0.01, EstimatedCost: 0.004}
	r1, ok, _, err := l.Reserve(ctx, "q", b, "ImageToTextTask")
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, _, err = l.Reserve(ctx, "q", b, "ImageToTextTask")
	require.NoError(t, err)
	require.True(t, ok)
	_, ok, _, err = l.Reserve(ctx, "q", b, "ImageToTextTask")
	require.NoError(t, err)
	require.False(t, ok, "0.012 would pass the cap of 0.01")

	settled, err := l.Settle(ctx, "q", r1, 0.001)
	require.NoError(t, err, "the first task cost less than reserved")
	require.True(t, settled)
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.InDelta(t, 0.005, u.Cost, 1e-9)
	require.InDelta(t, 0.005, u.RemainingCost, 1e-9)
	require.Equal(t, int64(-1), u.RemainingCreateTasks, "no count limit")
	r, ok, _, err := l.Reserve(ctx, "q", b, "TurnstileToken")
	require.NoError(t, err)
	require.True(t, ok, "0.009 fits")
	require.Equal(t, int64(4000), r.Micros, "a type not seen yet is reserved at estimatedCost")
	r, ok, _, err = l.Reserve(ctx, "q", b, "ImageToTextTask")
	require.NoError(t, err)
	require.True(t, ok, "0.010 fits")
	require.Equal(t, int64(1000), r.Micros, "a type seen is reserved at its reported cost")
}

func TestPauseLeavesOtherPausesAlone(t *testing.T) {
	t.Parallel()
	l, mr, rc := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Minute, MaxCreateTasks: 1}

	require.NoError(t, rc.Set(ctx, "asynq:{ops}:paused", "1", 0).Err(), "an operator paused ops")
	paused, err := l.Pause(ctx, "ops")
	require.NoError(t, err)
	require.False(t, paused)
	resumed, err := l.ResumeIfRoom(ctx, "ops", b)
	require.NoError(t, err)
	require.False(t, resumed, "the operator's pause is never lifted")
	require.Equal(t, int64(1), rc.Exists(ctx, "asynq:{ops}:paused").Val())

	_, ok, _, err := l.Reserve(ctx, "q", b, "")
	require.NoError(t, err)
	require.True(t, ok)
	paused, err = l.Pause(ctx, "q")
	require.NoError(t, err)
	require.True(t, paused)
	resumed, err = l.ResumeIfRoom(ctx, "q", b)
	require.NoError(t, err)
	require.False(t, resumed, "no room yet")
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, u.Paused)

	mr.SetTime(time.Date(2026, 11, 30, 12, 1, 2, 0, time.UTC))
	resumed, err = l.ResumeIfRoom(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, resumed)
	require.Equal(t, int64(0), rc.Exists(ctx, "asynq:{q}:paused", keys.BudgetPaused("q")).Val())
}

// TestReserveIsAtomicAcrossClients runs many clients against a real redis-server at once: the
// count never passes the cap, whatever the interleaving.
func TestReserveIsAtomicAcrossClients(t *testing.T) {
	t.Parallel()
	srv := enqueuetest.Redis(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Hour, MaxCreateTasks: 50, MaxCost: 1, EstimatedCost: 0.001}
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
		t.Cleanup(func() { rc.Close() })
		l := ledger.New(rc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				_, ok, _, err := l.Reserve(ctx, "shared", b, "")
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
	u, err := ledger.New(rc).Read(ctx, "shared", b)
	require.NoError(t, err)
	require.Equal(t, int64(50), u.CreateTasks)
	require.InDelta(t, 0.05, u.Cost, 1e-9)
}

// TestRunningSumsMatchTheBuckets moves the clock through two windows of reservations and
// settlements, some buckets left empty, and after each step checks the ledger's figures against
// the sums of its buckets recounted from the hash: the running sums never drift.
func TestRunningSumsMatchTheBuckets(t *testing.T) {
	t.Parallel()
	l, mr, rc := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Minute, MaxCost: 1000, EstimatedCost: 0.002}
	start := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	type held struct {
		r  ledger.Reservation
		at time.Time
	}
	var kept []held
	for step := range 240 {
		now := start.Add(time.Duration(step) * 700 * time.Millisecond)
		if step%17 > 12 {
			continue // a few quiet seconds now and then
		}
		mr.SetTime(now)
		r, ok, _, err := l.Reserve(ctx, "q", b, "")
		require.NoError(t, err)
		require.True(t, ok)
		kept = append(kept, held{r, now})
		if step%3 == 0 {
			_, err := l.Settle(ctx, "q", kept[len(kept)/2].r, 0.001*float64(step%5))
			require.NoError(t, err)
		}
		u, err := l.Read(ctx, "q", b)
		require.NoError(t, err)
		n, m := recount(t, rc, now, b)
		require.Equal(t, n, u.CreateTasks, "step %d", step)
		require.InDelta(t, m, u.Cost, 1e-9, "step %d", step)
	}
	// Idle for longer than a window: everything has left it.
	mr.SetTime(start.Add(time.Hour))
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.Zero(t, u.CreateTasks)
	require.Zero(t, u.Cost)
}

// recount sums the buckets still inside the window from the hash itself.
func recount(t *testing.T, rc *redis.Client, now time.Time, b policyfile.Budget) (int64, float64) {
	t.Helper()
	fields, err := rc.HGetAll(context.Background(), keys.Budget("q")).Result()
	require.NoError(t, err)
	g := b.Window.Milliseconds() / 60
	lo := (now.UnixMilli() - b.Window.Milliseconds()) / g
	var n, m int64
	for f, v := range fields {
		var bucket, val int64
		if len(f) < 3 || f[1] != ':' {
			continue // the running sums
		}
		if _, err := fmt.Sscanf(f[2:], "%d", &bucket); err != nil || bucket < lo {
			continue
		}
		_, err := fmt.Sscanf(v, "%d", &val)
		require.NoError(t, err)
		if f[0] == 'n' {
			n += val
		} else {
			m += val
		}
	}
	return n, float64(m) / 1e6
}

// TestLedgerReadsAnOlderHash: a hash written before the running sums (buckets only) is summed in
// full once, then kept up to date.
func TestLedgerReadsAnOlderHash(t *testing.T) {
	t.Parallel()
	l, mr, rc := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Minute, MaxCreateTasks: 5, MaxCost: 1, EstimatedCost: 0.1}
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	mr.SetTime(now)
	cur := now.UnixMilli() / 1000
	require.NoError(t, rc.HSet(ctx, keys.Budget("q"),
		fmt.Sprintf("n:%d", cur-5), 2, fmt.Sprintf("m:%d", cur-5), 200_000,
		fmt.Sprintf("n:%d", cur-100), 9, fmt.Sprintf("m:%d", cur-100), 900_000, // older than the window
	).Err())
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.Equal(t, int64(2), u.CreateTasks)
	require.InDelta(t, 0.2, u.Cost, 1e-9)
	for range 3 {
		_, ok, _, err := l.Reserve(ctx, "q", b, "")
		require.NoError(t, err)
		require.True(t, ok)
	}
	_, ok, _, err := l.Reserve(ctx, "q", b, "")
	require.NoError(t, err)
	require.False(t, ok, "five createTasks in the window")
	u, err = l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.Equal(t, int64(5), u.CreateTasks)
	require.InDelta(t, 0.5, u.Cost, 1e-9)
}
