package redisconn_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

func TestRedisHealthSaysOnceEachWay(t *testing.T) {
	t.Parallel()
	r := enqueuetest.Redis(t, enqueuetest.RedisOptions{AppendOnly: true, AppendFsync: "always"})
	rc, err := redisconn.Open(context.Background(), r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	logs := &enqueuetest.LogBuffer{}
	h := redisconn.NewHealth(redisconn.HealthParams{Redis: rc, Logger: debugLogger(logs), Interval: 50 * time.Millisecond})
	h.Start(context.Background())
	t.Cleanup(h.Shutdown)

	require.NoError(t, r.Kill())
	require.True(t, waitFor(h.Down), "the watcher did not notice")
	// Every one who meets the outage may check; it is still said once.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); require.False(t, h.Check(context.Background())) }()
	}
	wg.Wait()
	require.NoError(t, r.Restart(context.Background()))
	require.True(t, waitFor(func() bool { return !h.Down() }), "the watcher did not see Redis back")
	require.True(t, h.Check(context.Background()))
	require.Equal(t, 1, logs.Count(`"msg":"redis unreachable`))
	require.Equal(t, 1, logs.Count(`"msg":"redis reachable again"`))
}

// debugLogger logs JSON at debug level into logs.
func debugLogger(logs *enqueuetest.LogBuffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// waitFor polls cond until it holds, up to a hang guard of two minutes.
func waitFor(cond func() bool) bool {
	for range 2 * 60 * 50 {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}
