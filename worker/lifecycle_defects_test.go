package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2/server"
	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/worker"
)

// The regression tests of the defects found where features meet; each failed on the code before
// its fix. The lifecycle model (lifecycle_model_test.go) finds them again at random.

// TestAsynqsRetryLimitNeverEndsAJobBehindDecide: a task asynq was told to retry fewer times than
// the policy allows (another producer's MaxRetry, say) ends dead through decide, with its
// dead-letter entry, one retry before asynq would archive it by itself; and the policy's limit
// never reaches what enqueue tells asynq.
func TestAsynqsRetryLimitNeverEndsAJobBehindDecide(t *testing.T) {
	t.Parallel()
	require.Greater(t, jobwire.AsynqMaxRetryDefault, classify.MaxRetriesLimit, "asynq is told more retries than any policy gives")
	require.Equal(t, classify.MaxRetriesLimit, enqueue.MaxRetriesLimit)

	b := setupHandler(t)
	ctx := context.Background()
	task := asynq.NewTask(jobwire.TaskType, solveJob("sq:create=SERVICE_UNAVAILABLE*10"))
	err := worker.ProcessAs(ctx, b.worker, "", "", 3, 5, task)
	require.Error(t, err)
	require.False(t, errors.Is(err, asynq.SkipRetry), "retry 3 of 5: retried")
	require.True(t, worker.IsFailure(err), "a retry spends one")

	err = worker.ProcessAs(ctx, b.worker, "", "", 4, 5, task)
	require.ErrorIs(t, err, asynq.SkipRetry, "retry 4 of 5: the last one asynq allows is decide's to end")
	rec := b.record(t)
	require.Equal(t, enqueue.StateDead, rec.State)
	require.Contains(t, rec.Error.ErrorDescription, "retry budget of 4 spent")
	require.Equal(t, int64(1), b.rc.HLen(ctx, keys.DeadLetters("")).Val(), "the dead job has its entry")
}

// TestRedisTroubleSpendsNoRetry: an attempt handed back because Redis could not be read spends
// none of the job's retries (asynq's IsFailure says no), so that an outage cannot use up a job's
// budget and let asynq archive it.
func TestRedisTroubleSpendsNoRetry(t *testing.T) {
	t.Parallel()
	b := setupHandler(t)
	b.mr.Server().SetPreHook(func(c *server.Peer, cmd string, _ ...string) bool {
		if strings.EqualFold(cmd, "HGET") {
			c.WriteError("LOADING Redis is loading the dataset in memory")
			return true
		}
		return false
	})
	err := b.handler.ProcessTask(context.Background(), asynq.NewTask(jobwire.TaskType, solveJob("sq:solve=20ms")))
	require.Error(t, err)
	require.False(t, errors.Is(err, asynq.SkipRetry))
	require.False(t, worker.IsFailure(err), "handed back without spending a retry: %v", err)
	require.Zero(t, b.fake.Stats().CreateTask, "nothing paid")
}

// TestPaidTaskIDLandsAfterAHandBack: the first save of a paid task's id fails (Redis loading),
// and the attempt is then handed back (shutdown) before Redis answers again. The id still lands
// once Redis answers, and the next attempt resumes the task instead of paying for another.
func TestPaidTaskIDLandsAfterAHandBack(t *testing.T) {
	t.Parallel()
	b := setupHandlerPolling(t, worker.PollConfig{Fixed: true, Interval: 20 * time.Millisecond})
	var failing, refused atomic.Bool
	failing.Store(true)
	b.mr.Server().SetPreHook(func(c *server.Peer, cmd string, _ ...string) bool {
		if failing.Load() && (strings.EqualFold(cmd, "EVALSHA") || strings.EqualFold(cmd, "EVAL")) {
			refused.Store(true)
			c.WriteError("LOADING Redis is loading the dataset in memory")
			return true
		}
		return false
	})
	task := asynq.NewTask(jobwire.TaskType, solveJob("sq:solve=3s"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.handler.ProcessTask(ctx, task) }()
	require.Eventually(t, func() bool { return b.fake.Stats().CreateTask == 1 && refused.Load() },
		time.Minute, 5*time.Millisecond, "the task is paid and its first save refused")
	cancel() // shutdown: asynq takes the job back
	err := <-done
	require.Error(t, err)
	require.False(t, worker.IsFailure(err), "a hand-back spends no retry")
	require.Nil(t, b.record(t).Remote, "Redis refused every save so far")

	failing.Store(false) // Redis answers again
	require.Eventually(t, func() bool { return b.record(t).Remote != nil }, time.Minute, 10*time.Millisecond,
		"the paid task's id lands once Redis answers, though the attempt was handed back")

	require.NoError(t, b.handler.ProcessTask(context.Background(), task))
	rec := b.record(t)
	require.Equal(t, enqueue.StateSolved, rec.State)
	require.Equal(t, 1, b.fake.Stats().CreateTask, "the next attempt resumed the paid task")
	var sol map[string]any
	require.NoError(t, json.Unmarshal(rec.Solution, &sol))
}
