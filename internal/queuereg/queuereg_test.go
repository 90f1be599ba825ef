package queuereg_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

func TestKnownQueuesJoinsOursAndAsynqs(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	queues, err := queuereg.Known(ctx, rc)
	require.NoError(t, err)
	require.Empty(t, queues)

	require.NoError(t, queuereg.Register(ctx, rc, "critical", "default"))
	_, err = asynq.NewClientFromRedisClient(rc).Enqueue(asynq.NewTask(jobwire.TaskType, []byte("{}"), asynq.Queue("low"), asynq.TaskID("a")))
	require.NoError(t, err)
	_, err = mr.SAdd("asynq:queues", "bad queue{x}") // another application's: never one of ours
	require.NoError(t, err)
	queues, err = queuereg.Known(ctx, rc)
	require.NoError(t, err)
	require.Equal(t, []string{"critical", "default", "low"}, queues)
}
