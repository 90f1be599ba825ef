package attempt

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/record"
)

// TestDeadLetterMirrorCopiesWhatAsynqArchivedAlone: a solve job that asynq archived without the
// handler (no dead-letter entry) is mirrored once, with asynq's last error; jobs of other types
// and jobs already in the dead-letter queue are left as they are.
func TestDeadLetterMirrorCopiesWhatAsynqArchivedAlone(t *testing.T) {
	t.Parallel()
	srv := enqueuetest.Redis(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	ctx := context.Background()
	producer := asynq.NewClientFromRedisClient(rc)
	inspector := asynq.NewInspectorFromRedisClient(rc)
	for id, typ := range map[string]string{"lost-1": jobwire.TaskType, "known-1": jobwire.TaskType, "other-1": "email:send"} {
		_, err := producer.Enqueue(asynq.NewTask(typ, []byte(`{"v":1}`)), asynq.TaskID(id))
		require.NoError(t, err)
		require.NoError(t, inspector.ArchiveTask("default", id))
	}
	st := record.New(rc)
	known := jobwire.Record{State: enqueue.StateDead, Error: &enqueue.ErrorInfo{ErrorCode: "UNKNOWN_PROVIDER_ERROR"}}
	require.NoError(t, st.AddDeadLetter(ctx, "default", "known-1", []byte(`{"v":1}`), known, nil, time.Now()))

	m := newDeadLetterMirror(deadLetterMirrorParams{rc: rc, inspector: inspector, queues: []string{"default"},
		store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now})
	require.Equal(t, 1, m.sweep(ctx))
	require.Equal(t, 0, m.sweep(ctx), "a second sweep finds nothing new")

	client, err := admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	letters, err := client.DeadLetters(ctx)
	require.NoError(t, err)
	codes := map[string]string{}
	for _, d := range letters {
		codes[d.ID] = d.Record.Error.ErrorCode
	}
	require.Equal(t, map[string]string{"lost-1": "WORKER_ERROR", "known-1": "UNKNOWN_PROVIDER_ERROR"}, codes)
}
