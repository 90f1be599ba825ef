package tally

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/metrics"
)

// TestTally: what workers count at job ends is what the console reads back, per window, with
// codes and provider names bounded, and failed jobs indexed.
func TestTally(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()

	start := time.Date(2026, 5, 1, 10, 30, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(start.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	at := func(d time.Duration) { clock.Store(start.Add(d).UnixNano()) }
	// Two workers on one Redis.
	newOne := func() *Tally {
		return New(Params{Redis: rc, Codes: metrics.KnownCodes(classify.Default()), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now})
	}
	w1, w2 := newOne(), newOne()

	// Three hours ago: in the day, not in the hour.
	at(-3 * time.Hour)
	w1.JobEnded(metrics.JobEnd{ID: "old-1", Queue: "default", State: enqueue.StateSolved, CreateTasks: 1, Cost: 0.002})
	w1.ProviderResult("CapSolver", "", 0)
	w1.flush(ctx)

	at(-10 * time.Minute)
	w1.JobEnded(metrics.JobEnd{ID: "order-1", Queue: "default", State: enqueue.StateSolved, CreateTasks: 2, Cost: 0.001})
	w2.JobEnded(metrics.JobEnd{ID: "order-2", Queue: "default", State: enqueue.StateFailed, Code: "DOMAIN_BANNED", CreateTasks: 1})
	w2.JobEnded(metrics.JobEnd{ID: "order-3", Queue: "default", State: enqueue.StateDead, Code: "ERROR_PROXY_s3cret", CreateTasks: 3})
	w2.JobEnded(metrics.JobEnd{ID: "low-1", Queue: "low", State: enqueue.StateFailed, Code: "DOMAIN_BANNED", CreateTasks: 1})
	w1.ProviderResult("CapSolver", "PROVIDER_UNREACHABLE", 0)
	w1.ProviderResult("CapSolver", "", 0)
	w2.ProviderResult("a provider with spaces", "", 0)
	at(0)
	w1.flush(ctx)
	w2.flush(ctx)

	got, err := Read(ctx, rc, []string{"default", "low", "idle"}, now(), time.Hour, 24*time.Hour)
	require.NoError(t, err)
	require.Len(t, got, 2)
	hour, day := got[0], got[1]

	d := hour.Queues["default"]
	require.Equal(t, int64(3), d.Jobs)
	require.Equal(t, map[enqueue.State]int64{enqueue.StateSolved: 1, enqueue.StateFailed: 1, enqueue.StateDead: 1}, d.ByState)
	require.Equal(t, []CodeCount{{enqueue.StateDead, metrics.LabelOther, 1}, {enqueue.StateFailed, "DOMAIN_BANNED", 1}}, d.ByCode,
		"a code no policy knows is counted as other: a provider cannot put text into Redis this way")
	require.Equal(t, int64(6), d.CreateTasks)
	require.InDelta(t, 0.001, d.Cost, 1e-9)
	require.Equal(t, int64(1), hour.Queues["low"].Jobs)
	require.Zero(t, hour.Queues["idle"].Jobs)

	require.Equal(t, int64(4), day.Queues["default"].Jobs)
	require.InDelta(t, 0.003, day.Queues["default"].Cost, 1e-9)

	cs := hour.Providers["CapSolver"]
	require.Equal(t, int64(1), cs.Solved)
	require.Equal(t, map[string]int64{"PROVIDER_UNREACHABLE": 1}, cs.Errors)
	require.InDelta(t, 0.5, cs.ErrorRate(), 1e-9)
	require.Equal(t, int64(2), day.Providers["CapSolver"].Solved)
	require.Equal(t, int64(1), hour.Providers[metrics.LabelOther].Solved)

	// Failed jobs are indexed for the console's list, with their code.
	members, err := rc.ZRange(ctx, keys.Failed("default"), 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"DOMAIN_BANNED order-2"}, members)
	// Keys carry their queue's hash tag and expire.
	require.True(t, mr.Exists(keys.Tally("default", start.Unix()/3600)))
	require.Positive(t, mr.TTL(keys.Tally("default", start.Unix()/3600)))

	// An hour later, the jobs ten minutes before start have left the hour.
	at(time.Hour)
	got, err = Read(ctx, rc, []string{"default"}, now(), time.Hour)
	require.NoError(t, err)
	require.Zero(t, got[0].Queues["default"].Jobs)
}

// TestTallyKeepsWhatRedisRefused: sums that could not be written are written by the next flush.
func TestTallyKeepsWhatRedisRefused(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	now := time.Now()
	tl := New(Params{Redis: rc, Codes: map[string]bool{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Now: func() time.Time { return now }})
	tl.JobEnded(metrics.JobEnd{ID: "a", Queue: "default", State: enqueue.StateSolved, CreateTasks: 1})
	mr.SetError("LOADING")
	tl.flush(ctx)
	mr.SetError("")
	tl.JobEnded(metrics.JobEnd{ID: "b", Queue: "default", State: enqueue.StateSolved, CreateTasks: 1})
	tl.Shutdown(ctx)
	got, err := Read(ctx, rc, []string{"default"}, now, time.Hour)
	require.NoError(t, err)
	require.Equal(t, int64(2), got[0].Queues["default"].Jobs)
	require.Equal(t, int64(2), got[0].Queues["default"].CreateTasks)
}
