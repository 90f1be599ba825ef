package imagebody_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

// TestSweepOrphanedBodies on a real Redis: image jobs are enqueued, some deleted through asynq's
// Inspector as asynqmon deletes them; sweeps Grace apart delete exactly the bodies whose task is
// gone, keep the one whose task exists and the one a dead letter needs, and keep a fresh orphan
// until it too has been orphaned for Grace.
func TestSweepOrphanedBodies(t *testing.T) {
	t.Parallel()
	enqueuetest.NeedRedisServer(t) // skips without redis-server, fails under CI=true
	ctx := context.Background()
	srv, err := redisserver.Start(ctx, redisserver.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc, BodyInlineMax: 8})
	require.NoError(t, err)
	bodies := map[string]string{}
	for _, id := range []string{"img-gone-1", "img-gone-2", "img-kept", "img-dead"} {
		_, err := client.Submit(ctx, enqueue.Job{ID: id, Task: map[string]any{"type": "ImageToTextTask", "body": strings.Repeat("QUJD", 64) + id}})
		require.NoError(t, err)
		body := keys.Body(enqueue.DefaultQueue, id, strings.Repeat("QUJD", 64)+id)
		require.EqualValues(t, 1, rc.Exists(ctx, body).Val(), id)
		bodies[id] = body
	}
	inspector := asynq.NewInspectorFromRedisClient(rc)
	for _, id := range []string{"img-gone-1", "img-gone-2", "img-dead"} {
		require.NoError(t, inspector.DeleteTask(enqueue.DefaultQueue, id))
	}
	// img-dead's task is gone (trimmed from asynq's archive) but its dead letter still needs the body.
	require.NoError(t, rc.HSet(ctx, keys.DeadLetters(enqueue.DefaultQueue), keys.DeadLetterField(enqueue.DefaultQueue, "img-dead"), `{}`).Err())

	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	const grace = 10 * time.Minute
	s := imagebody.NewSweeper(imagebody.SweeperParams{Redis: rc, Queues: []string{enqueue.DefaultQueue, "empty"},
		Grace: grace, Batch: 2, Pause: time.Millisecond, Now: func() time.Time { return now }})
	exists := func(id string) bool { return rc.Exists(ctx, bodies[id]).Val() == 1 }

	n, err := s.Sweep(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "the first sweep only marks the orphans")

	now = now.Add(grace)
	fresh := keys.Body(enqueue.DefaultQueue, "img-fresh", "body")
	require.NoError(t, rc.Set(ctx, fresh, "body", time.Hour).Err()) // written just before its task
	bodies["img-fresh"] = fresh
	n, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, n)
	for id, want := range map[string]bool{"img-gone-1": false, "img-gone-2": false, "img-kept": true, "img-dead": true, "img-fresh": true} {
		require.Equal(t, want, exists(id), id)
	}

	now = now.Add(grace)
	n, err = s.Sweep(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, n, "the fresh orphan goes once it has been one for the grace period")
	require.False(t, exists("img-fresh"))
	require.True(t, exists("img-kept"))
	require.True(t, exists("img-dead"))
}
