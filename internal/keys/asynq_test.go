package keys_test

import (
	"context"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// TestAsynqLayout drives the asynq version in go.mod against a real redis-server and checks
// every key, field and state of asynq's that package keys names. When an asynq upgrade moves
// one, the failing row names it.
func TestAsynqLayout(t *testing.T) {
	t.Parallel()
	srv := enqueuetest.Redis(t)
	ctx := context.Background()
	opt := asynq.RedisClientOpt{Addr: srv.Addr}
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	client := asynq.NewClient(opt)
	t.Cleanup(func() { _ = client.Close() })
	inspector := asynq.NewInspector(opt)
	t.Cleanup(func() { _ = inspector.Close() })

	const queue, pending, done = "layout", "pending-1", "done-1"
	_, err := client.EnqueueContext(ctx, asynq.NewTask("t", []byte("{}")), asynq.Queue(queue), asynq.TaskID(pending))
	require.NoError(t, err)

	// A task that completes with a result and a retention stays in the completed set.
	_, err = client.EnqueueContext(ctx, asynq.NewTask("t", []byte("{}")), asynq.Queue("run"), asynq.TaskID(done), asynq.Retention(time.Hour))
	require.NoError(t, err)
	finished := make(chan struct{})
	server := asynq.NewServer(opt, asynq.Config{Queues: map[string]int{"run": 1}, Concurrency: 1, LogLevel: asynq.FatalLevel})
	mux := asynq.NewServeMux()
	mux.HandleFunc("t", func(ctx context.Context, task *asynq.Task) error {
		defer close(finished)
		_, err := task.ResultWriter().Write([]byte("the result"))
		return err
	})
	require.NoError(t, server.Start(mux))
	t.Cleanup(server.Shutdown)
	<-finished
	require.Eventually(t, func() bool {
		info, err := inspector.GetTaskInfo("run", done)
		return err == nil && info.State == asynq.TaskStateCompleted
	}, 30*time.Second, 10*time.Millisecond, "the task completes")

	t.Run("AsynqQueues lists a queue enqueued to", func(t *testing.T) {
		require.True(t, rc.SIsMember(ctx, keys.AsynqQueues, queue).Val())
	})
	t.Run("AsynqTask is the task's hash", func(t *testing.T) {
		require.Equal(t, int64(1), rc.Exists(ctx, keys.AsynqTask(queue, pending)).Val())
		require.NotEmpty(t, rc.HGet(ctx, keys.AsynqTask(queue, pending), keys.AsynqMessageField).Val())
		require.Equal(t, "pending", rc.HGet(ctx, keys.AsynqTask(queue, pending), keys.AsynqStateField).Val())
	})
	t.Run("AsynqQueuePrefix prefixes the keys asynq keeps for the queue", func(t *testing.T) {
		ours, err := rc.Keys(ctx, keys.AsynqQueuePrefix(queue)+"*").Result()
		require.NoError(t, err)
		require.Contains(t, ours, keys.AsynqTask(queue, pending))
		require.Contains(t, ours, keys.AsynqQueuePrefix(queue)+"pending", "asynq's pending list of the queue")
	})
	t.Run("AsynqResultField is what ResultWriter writes and Inspector reads", func(t *testing.T) {
		require.Equal(t, "the result", rc.HGet(ctx, keys.AsynqTask("run", done), keys.AsynqResultField).Val())
		rc.HSet(ctx, keys.AsynqTask(queue, pending), keys.AsynqResultField, "written by us")
		info, err := inspector.GetTaskInfo(queue, pending)
		require.NoError(t, err)
		require.Equal(t, "written by us", string(info.Result))
	})
	t.Run("AsynqStateCompleted and AsynqCompleted hold a completed task", func(t *testing.T) {
		require.Equal(t, keys.AsynqStateCompleted, rc.HGet(ctx, keys.AsynqTask("run", done), keys.AsynqStateField).Val())
		_, err := rc.ZScore(ctx, keys.AsynqCompleted("run"), done).Result()
		require.NoError(t, err, "the completed task is in AsynqCompleted")
	})
	t.Run("AsynqPaused is what PauseQueue sets and what pauses a queue", func(t *testing.T) {
		require.NoError(t, inspector.PauseQueue(queue))
		require.Equal(t, int64(1), rc.Exists(ctx, keys.AsynqPaused(queue)).Val())
		require.NoError(t, inspector.UnpauseQueue(queue))
		require.Equal(t, int64(0), rc.Exists(ctx, keys.AsynqPaused(queue)).Val())
		require.NoError(t, rc.Set(ctx, keys.AsynqPaused(queue), time.Now().Unix(), 0).Err())
		info, err := inspector.GetQueueInfo(queue)
		require.NoError(t, err)
		require.True(t, info.Paused, "asynq reads AsynqPaused as paused")
	})
}
