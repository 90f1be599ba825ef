package worker

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

func TestAsynqLoggerQuietWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	logs := &enqueuetest.LogBuffer{}
	// Nothing listens on port 1: every PING fails at once.
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rc.Close() })
	h := enqueue.NewRedisHealth(enqueue.RedisHealthParams{Redis: rc, Logger: debugLogger(logs)})
	l := newAsynqLogger(debugLogger(logs), h)
	for i := range 100 {
		l.Warn(fmt.Sprintf(`Could not move task id=job-%d type="anysolver:solve" from "asynq:{default}:active": dial tcp 127.0.0.1:1: connect: connection refused; Will retry syncing`, i))
		l.Error("Failed to forward scheduled tasks: INTERNAL_ERROR: dial tcp 127.0.0.1:1: connect: connection refused")
	}
	require.Equal(t, 1, logs.Count(`"msg":"redis unreachable`), "the outage is said once, by the watcher")
	require.Equal(t, 1, logs.Count(`"level":"WARN"`)+logs.Count(`"level":"ERROR"`), "asynq's complaints about it go to debug")
	require.Equal(t, 200, logs.Count(`"level":"DEBUG"`))
}

func TestLineLimiter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := newLineLimiter(time.Minute, func() time.Time { return now })
	allowed := 0
	for i := range 50 {
		if ok, _ := l.allow(fmt.Sprintf("Could not remove task id=job-%d type=%q err: NOSCRIPT", i, "anysolver:solve")); ok {
			allowed++
		}
	}
	require.Equal(t, 1, allowed, "one line per kind per window")
	ok, _ := l.allow("Failed to write server state data: boom")
	require.True(t, ok, "another kind has its own window")
	now = now.Add(time.Minute)
	ok, left := l.allow("Could not remove task id=job-99 type=\"anysolver:solve\" err: NOSCRIPT")
	require.True(t, ok)
	require.Equal(t, 49, left, "the next line says how many were left out")

	for _, tt := range []struct{ msg, kind string }{
		{`Could not move task id=a-1 type="x" from "q"`, "Could not move"},
		{"Dequeue error: UNKNOWN: boom", "Dequeue error"},
		{"Failed to extend lease for tasks [a b c]: boom", "Failed to extend"},
		{"Lease reset failed for 3f2a-9; lease deadline: 2026", "Lease reset failed"},
		{"Quitting worker. task id=x", "Quitting worker. task"},
		{"recoverer: could not list lease expired tasks: x", "recoverer"},
	} {
		require.Equal(t, tt.kind, lineKindOf(tt.msg))
	}
}

// debugLogger logs JSON at debug level into logs.
func debugLogger(logs *enqueuetest.LogBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
