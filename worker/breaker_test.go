package worker

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

	b := newBreaker(breakerParams{rc: rc, queues: []string{"critical", "default", "low"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), observer: NopObserver{}, now: time.Now})
	ctx := context.Background()
	opened, err := b.trip(ctx, "ERROR_ZERO_BALANCE", "no funds")
	require.NoError(t, err)
	require.True(t, opened)
	again, err := b.trip(ctx, "ERROR_ZERO_BALANCE", "no funds")
	require.NoError(t, err)
	require.False(t, again, "a second trip finds the breaker open")

	state, err := ReadBreaker(ctx, rc)
	require.NoError(t, err)
	require.True(t, state.Open)
	require.ElementsMatch(t, []string{"critical", "default"}, state.PausedQueues)
	for _, q := range []string{"critical", "default", "low"} {
		info, err := inspector.GetQueueInfo(q)
		require.NoError(t, err)
		require.True(t, info.Paused, "asynq sees queue %s paused", q)
	}

	b.resume(ctx, state)
	state, err = ReadBreaker(ctx, rc)
	require.NoError(t, err)
	require.False(t, state.Open)
	for q, want := range map[string]bool{"critical": false, "default": false, "low": true} {
		info, err := inspector.GetQueueInfo(q)
		require.NoError(t, err)
		require.Equal(t, want, info.Paused, "queue %s after the resume", q)
	}
}

// TestResetBreaker: an operator's reset closes the breaker and resumes the queues it paused, and
// no other; resetting a closed breaker changes nothing.
func TestResetBreaker(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	mr.Set(pausedKey("low"), "1") // the operator's own pause
	b := newBreaker(breakerParams{rc: rc, queues: []string{"default", "low"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), observer: NopObserver{}, now: time.Now})
	_, err := b.trip(ctx, "ERROR_KEY_DOES_NOT_EXIST", "bad key")
	require.NoError(t, err)

	resumed, err := ResetBreaker(ctx, rc)
	require.NoError(t, err)
	require.Equal(t, []string{"default"}, resumed)
	state, err := ReadBreaker(ctx, rc)
	require.NoError(t, err)
	require.False(t, state.Open)
	require.False(t, mr.Exists(pausedKey("default")))
	require.True(t, mr.Exists(pausedKey("low")), "an operator's pause stays")

	resumed, err = ResetBreaker(ctx, rc)
	require.NoError(t, err)
	require.Empty(t, resumed)
}
