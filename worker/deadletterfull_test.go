package worker_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// TestDeadLetterLimitRefusesLoudly: with the dead-letter queue at its bound (counted over every
// queue's hash), a job that dies goes to asynq's archive alone, is counted as refused, and is not
// retried for want of its entry.
func TestDeadLetterLimitRefusesLoudly(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rc.Close() })
	fake, srv := anysolvertest.NewServer(anysolvertest.Options{APIKeys: []string{testAPIKey},
		Script: anysolvertest.DirectiveScript(nil)})
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close)
	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: testAPIKey})
	require.NoError(t, err)
	logs := &enqueuetest.LogBuffer{}
	w, err := worker.New(worker.Config{Redis: rc, AnySolver: as, Queues: map[string]int{"default": 1},
		DeadLetterLimit: 1, Breaker: worker.BreakerConfig{Disabled: true},
		Observer: worker.NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	ctx := context.Background()
	// Another queue's dead letter fills the bound of one.
	require.NoError(t, deadletter.Put(ctx, rc, deadletter.Letter{ID: "x", Queue: "other", DeadAt: time.Now()}, 1))
	require.NoError(t, rc.HSet(ctx, "asynq:{}:t:", "msg", "x").Err())

	err = w.Handler().ProcessTask(ctx, asynq.NewTask(jobwire.TaskType, solveJob("sq:create=UNKNOWN_PROVIDER_ERROR")))
	require.True(t, errors.Is(err, asynq.SkipRetry), "archived, not retried: %v", err)
	require.False(t, mr.Exists(keys.DeadLetters("")), "refused at the bound")
	refused, err := mr.Get(keys.DeadLettersRefused)
	require.NoError(t, err)
	require.Equal(t, "1", refused)
	require.Contains(t, logs.String(), "the dead-letter queue is full")
}
