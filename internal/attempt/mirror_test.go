package attempt

import (
	"context"
	"errors"
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
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/metrics"
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

// TestDeadLetterMirrorQueuesTheCallbackFirst: the mirror queues an archived job's callback before
// its dead-letter entry, as the handler does, so that a redrive or a purge of the entry never
// loses the callback. A callback that cannot be queued leaves the job without an entry, and the
// next sweep does both; a job whose record says dead already gets its callback too.
func TestDeadLetterMirrorQueuesTheCallbackFirst(t *testing.T) {
	t.Parallel()
	srv := enqueuetest.Redis(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1}) // nothing listens there
	t.Cleanup(func() { _ = down.Close() })
	ctx := context.Background()
	producer := asynq.NewClientFromRedisClient(rc)
	inspector := asynq.NewInspectorFromRedisClient(rc)
	payload := []byte(`{"v":1,"callbackUrl":"https://hooks.example/cb","task":{"type":"ImageToTextTask","body":"AA=="}}`)
	st := record.New(rc)
	for _, id := range []string{"lost-1", "recorded-1"} {
		_, err := producer.Enqueue(asynq.NewTask(jobwire.TaskType, payload), asynq.TaskID(id))
		require.NoError(t, err)
	}
	dead := jobwire.Record{State: enqueue.StateDead, Error: &enqueue.ErrorInfo{ErrorCode: "UNKNOWN_PROVIDER_ERROR"}, FinishedAt: time.Now().UTC()}
	require.NoError(t, st.Save(ctx, "default", "recorded-1", &dead))
	for _, id := range []string{"lost-1", "recorded-1"} {
		require.NoError(t, inspector.ArchiveTask("default", id))
	}
	callbacks := func(rc redis.UniversalClient) *callback.Callbacks {
		return callback.New(callback.Params{Redis: rc, Window: callback.WindowDefault, Backoff: callback.BackoffDefault,
			Observer: metrics.NopObserver{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	}
	m := newDeadLetterMirror(deadLetterMirrorParams{rc: rc, inspector: inspector, queues: []string{"default"},
		store: st, callbacks: callbacks(down), log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now})
	letters := func() []string {
		all, err := deadletter.List(ctx, rc)
		require.NoError(t, err)
		var ids []string
		for _, d := range all {
			ids = append(ids, d.ID)
		}
		return ids
	}
	queued := func() []string {
		tasks, err := inspector.ListPendingTasks(callback.Queue)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return nil
		}
		require.NoError(t, err)
		var ids []string
		for _, task := range tasks {
			ids = append(ids, task.ID)
		}
		return ids
	}

	require.Equal(t, 0, m.sweep(ctx), "no callback can be queued: no dead letter either")
	require.Empty(t, letters())
	require.Empty(t, queued())

	m.callbacks = callbacks(rc)
	require.Equal(t, 2, m.sweep(ctx))
	require.ElementsMatch(t, []string{"lost-1", "recorded-1"}, letters())
	require.ElementsMatch(t, []string{"cb-lost-1-1", "cb-recorded-1-1"}, queued())
}
