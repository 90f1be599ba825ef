package breaker

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// TestBreakerPausesOnlyWhatItResumes checks the trip and the resume on asynq's own pause: the
// breaker pauses its queues, leaves an operator's pause alone, and resumes only its own.
func TestBreakerPausesOnlyWhatItResumes(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	inspector := asynq.NewInspectorFromRedisClient(rc)
	producer := asynq.NewClientFromRedisClient(rc)
	for _, q := range []string{"critical", "default", "low"} {
		_, err := producer.Enqueue(asynq.NewTask("x", nil), asynq.Queue(q))
		require.NoError(t, err)
	}
	require.NoError(t, inspector.PauseQueue("low"), "the operator pauses low by hand")

	b := New(Params{Redis: rc, Queues: []string{"critical", "default", "low"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: nopObserver{}, Now: time.Now})
	ctx := context.Background()
	opened, err := b.Trip(ctx, "ERROR_ZERO_BALANCE", "no funds")
	require.NoError(t, err)
	require.True(t, opened.Opened)
	again, err := b.Trip(ctx, "ERROR_ZERO_BALANCE", "no funds")
	require.NoError(t, err)
	require.False(t, again.Opened, "a second trip finds the breaker open")

	state, err := Read(ctx, rc)
	require.NoError(t, err)
	require.True(t, state.Open)
	require.ElementsMatch(t, []string{"critical", "default"}, state.PausedQueues)
	for _, q := range []string{"critical", "default", "low"} {
		info, err := inspector.GetQueueInfo(q)
		require.NoError(t, err)
		require.True(t, info.Paused, "asynq sees queue %s paused", q)
	}

	b.Resume(ctx, state)
	state, err = Read(ctx, rc)
	require.NoError(t, err)
	require.False(t, state.Open)
	for q, want := range map[string]bool{"critical": false, "default": false, "low": true} {
		info, err := inspector.GetQueueInfo(q)
		require.NoError(t, err)
		require.Equal(t, want, info.Paused, "queue %s after the resume", q)
	}
}

// TestBreakerKeysPerQueue checks the breaker's keys on a Redis Cluster's terms: each queue's
// pause and mark are the queue's own keys (one hash tag), a resume only closes the opening it
// probed, and the queues left paused by a resume that failed halfway are found and resumed.
func TestBreakerKeysPerQueue(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	// "fresh" never had a task: only the worker's registration names it.
	require.NoError(t, queuereg.Register(ctx, rc, "fresh", "default"))
	b := New(Params{Redis: rc, Queues: []string{"default", "fresh"},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Observer: nopObserver{}, Now: time.Now})

	opened, err := b.Trip(ctx, "ERROR_ZERO_BALANCE", "no funds")
	require.NoError(t, err)
	require.True(t, opened.Opened)
	first, err := Read(ctx, rc)
	require.NoError(t, err)
	require.NotEmpty(t, first.ID)
	require.Equal(t, []string{"default", "fresh"}, first.PausedQueues)
	for _, q := range []string{"default", "fresh"} {
		require.Equal(t, "solvequeue:{"+q+"}:breaker:paused", keys.BreakerPaused(q))
		mark, err := mr.Get(keys.BreakerPaused(q))
		require.NoError(t, err)
		require.Equal(t, first.ID, mark, "queue %s is marked with the opening", q)
		require.True(t, mr.Exists("asynq:{"+q+"}:paused"))
	}

	// A resume that probed an older opening leaves a newer one alone.
	stale := first
	stale.ID = "an-older-opening"
	b.Resume(ctx, stale)
	again, err := Read(ctx, rc)
	require.NoError(t, err)
	require.True(t, again.Open)
	require.Equal(t, []string{"default", "fresh"}, again.PausedQueues)

	// Redis fails the resume after the close: "fresh" stays paused with its mark, breaker closed.
	n, err := closeScript.Run(ctx, rc, []string{keys.Breaker}, first.ID).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n)
	ok, err := unpause(ctx, rc, "default", first.ID)
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = unpause(ctx, rc, "fresh", "another-opening")
	require.NoError(t, err)
	require.False(t, ok, "a mark of another opening is not lifted")

	// The prober's sweep lifts a mark only when it sees it twice with the breaker closed.
	seen := b.sweepStale(ctx, nil)
	require.Equal(t, map[string]string{"fresh": first.ID}, seen)
	require.True(t, mr.Exists("asynq:{fresh}:paused"), "one sighting is not enough: a trip may be under way")
	seen = b.sweepStale(ctx, seen)
	require.Empty(t, seen)
	require.False(t, mr.Exists("asynq:{fresh}:paused"))
	require.False(t, mr.Exists(keys.BreakerPaused("fresh")))
	require.False(t, mr.Exists("asynq:{default}:paused"))
}

// nopObserver is told nothing that matters to these tests.
type nopObserver struct{}

func (nopObserver) BreakerChanged(bool, string) {}
