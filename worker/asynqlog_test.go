package worker

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

func TestAsynqLoggerQuietWhileRedisIsDown(t *testing.T) {
	t.Parallel()
	logs := &enqueuetest.LogBuffer{}
	// Nothing listens on port 1: every PING fails at once.
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { rc.Close() })
	h := redisconn.NewHealth(redisconn.HealthParams{Redis: rc, Logger: debugLogger(logs)})
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

// TestRedisHealthSaysOnceUnderABusyPool restarts Redis while many goroutines use the shared pool
// as asynq does and pass every failure to the asynq logger, which asks the watcher: while the
// pool reconnects, late dial failures and go-redis failing new dials at once with its last dial
// error must not read as new outages. The outage is still said once each way.
func TestRedisHealthSaysOnceUnderABusyPool(t *testing.T) {
	t.Parallel()
	r := enqueuetest.Redis(t)
	rc, err := redisconn.Open(context.Background(), r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	logs := &enqueuetest.LogBuffer{}
	h := redisconn.NewHealth(redisconn.HealthParams{Redis: rc, Logger: debugLogger(logs)})
	h.Start(context.Background())
	t.Cleanup(h.Shutdown)
	l := newAsynqLogger(debugLogger(logs), h)

	// Each goroutine works as asynq does until told to stop, counting the commands answered.
	var (
		wg       sync.WaitGroup
		answered atomic.Int64
		stop     = make(chan struct{})
	)
	for i := range 300 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err := rc.Get(ctx, fmt.Sprintf("k%d", i)).Err()
				cancel()
				if err != nil && err != redis.Nil {
					l.Error("Failed to forward scheduled tasks: UNKNOWN: " + err.Error())
					continue
				}
				answered.Add(1)
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })

	require.True(t, waitUntil(func() bool { return answered.Load() >= 1000 }), "the pool did not work")
	require.NoError(t, r.Kill())
	require.True(t, waitUntil(h.Down), "the watcher did not notice")
	require.NoError(t, r.Restart(context.Background()))
	require.True(t, waitUntil(func() bool { return !h.Down() }), "the watcher did not see Redis back")
	// The pool reconnects under the same load: thousands of commands after the recovery.
	after := answered.Load()
	require.True(t, waitUntil(func() bool { return answered.Load() >= after+5000 }), "the pool did not reconnect")
	require.Equal(t, 1, logs.Count(`"msg":"redis unreachable`), "said once:\n%s", healthLines(logs.String()))
	require.Equal(t, 1, logs.Count(`"msg":"redis reachable again"`), "said once:\n%s", healthLines(logs.String()))
}

// healthLines are the watcher's lines in logs.
func healthLines(logs string) string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, "reachable") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// waitUntil polls cond until it holds, up to a hang guard of two minutes.
func waitUntil(cond func() bool) bool {
	for range 2 * 60 * 50 {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}
