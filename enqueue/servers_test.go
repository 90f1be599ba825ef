package enqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

func TestUnserved(t *testing.T) {
	t.Parallel()
	r := enqueuetest.Redis(t)
	rc, err := redisconn.Open(context.Background(), r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	c, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)

	got, err := c.Unserved("low", "", "critical", "low")
	require.NoError(t, err)
	require.Equal(t, []string{"critical", "default", "low"}, got, "no worker runs: every queue, each once, sorted")

	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{"default": 2, "critical": 1},
		LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	// The server writes its record as it starts; wait for that event, not for a time.
	require.Eventually(t, func() bool {
		got, err := c.Unserved("low", "", "critical")
		return err == nil && len(got) == 1
	}, 10*time.Second, 20*time.Millisecond)
	got, err = c.Unserved("low", "", "critical")
	require.NoError(t, err)
	require.Equal(t, []string{"low"}, got)

	srv.Shutdown() // a server that shuts down removes its record
	got, err = c.Unserved("default")
	require.NoError(t, err)
	require.Equal(t, []string{"default"}, got)
}
