package admin_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/failedindex"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// recordingServer is an asynq server standing in for a worker: it ends each job with the record
// the test set for its ID (written with asynq's own ResultWriter), and counts the runs.
type recordingServer struct {
	mu      sync.Mutex
	records map[string]jobwire.Record
	runs    map[string]int
}

func (s *recordingServer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	id, _ := asynq.GetTaskID(ctx)
	s.mu.Lock()
	rec := s.records[id]
	s.runs[id]++
	s.mu.Unlock()
	data, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = t.ResultWriter().Write(data)
	return err
}

func (s *recordingServer) set(id string, rec jobwire.Record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[id] = rec
}

func (s *recordingServer) runCount(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[id]
}

func TestRedriveFailed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := enqueuetest.Redis(t)
	rc, err := redisconn.Open(ctx, r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	c, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	a, err := admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	inspector := asynq.NewInspectorFromRedisClient(rc)

	failed := jobwire.Record{State: jobwire.StateFailed, Attempts: 1, CreateTasks: 1,
		Error: &jobwire.ErrorInfo{ErrorID: 1, ErrorCode: "ERROR_ZERO_BALANCE", Decision: "failed"}}
	rs := &recordingServer{records: map[string]jobwire.Record{
		"order-42":  failed,
		"solved-1":  {State: jobwire.StateSolved, Attempts: 1, CreateTasks: 1},
		"in-a":      failed,
		"twin-in-b": failed,
	}, runs: map[string]int{}}
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{"default": 1, "b": 1}, LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(rs))
	t.Cleanup(srv.Shutdown)

	task := map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example", "websiteKey": "k"}
	for _, j := range []enqueue.Job{{ID: "order-42", Task: task}, {ID: "solved-1", Task: task},
		{ID: "twin-in-b", Task: task}, {ID: "twin-in-b", Queue: "b", Task: task}} {
		_, err := c.Submit(ctx, j)
		require.NoError(t, err)
	}
	waitFor := func(id string, want jobwire.State) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		out, err := c.Wait(wctx, id)
		require.NoError(t, err)
		require.Equal(t, want, out.State)
	}
	waitFor("order-42", jobwire.StateFailed)
	first, err := inspector.GetTaskInfo("default", "order-42")
	require.NoError(t, err)
	fp, err := jobwire.DecodePayload(first.Payload)
	require.NoError(t, err)
	submitted := fp.SubmittedAt
	waitFor("solved-1", jobwire.StateSolved)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err = c.WaitIn(wctx, "b", "twin-in-b")
	require.NoError(t, err)
	_, err = c.WaitIn(wctx, "default", "twin-in-b")
	require.NoError(t, err)
	require.NoError(t, rc.ZAdd(ctx, keys.Failed("default"),
		redis.Z{Score: float64(time.Now().UnixMilli()), Member: failedindex.Member("ERROR_ZERO_BALANCE", "order-42")}).Err())

	// Not failed: refused, nothing changes.
	_, err = a.RedriveFailed(ctx, "", "solved-1")
	require.ErrorIs(t, err, admin.ErrNotFailed)
	require.ErrorContains(t, err, "solved in queue default")
	_, err = a.RedriveFailed(ctx, "", "nobody")
	require.ErrorIs(t, err, jobwire.ErrJobNotFound)
	_, err = a.RedriveFailed(ctx, "", "twin-in-b")
	require.ErrorContains(t, err, "name the queue")

	// After the operator tops up: the job runs again and ends as the worker says now.
	rs.set("order-42", jobwire.Record{State: jobwire.StateSolved, Attempts: 1, CreateTasks: 1})
	q, err := a.RedriveFailed(ctx, "", "order-42")
	require.NoError(t, err)
	require.Equal(t, "default", q)
	waitFor("order-42", jobwire.StateSolved)
	require.Equal(t, 2, rs.runCount("order-42"))
	info, err := inspector.GetTaskInfo("default", "order-42")
	require.NoError(t, err)
	p, err := jobwire.DecodePayload(info.Payload)
	require.NoError(t, err)
	require.Equal(t, 2, p.OutcomeSeq(), "a redrive is a new outcome, called back on its own")
	require.True(t, p.SubmittedAt.After(submitted), "its timings count from the redrive")
	idx, err := a.FailedJobs(ctx, "default")
	require.NoError(t, err)
	require.Empty(t, idx, "the redriven job left the failed index")

	// A second redrive of the same (stale) choice changes nothing: the job is solved now.
	_, err = a.RedriveFailed(ctx, "default", "order-42")
	require.ErrorIs(t, err, admin.ErrNotFailed)
	require.Equal(t, 2, rs.runCount("order-42"))

	q, err = a.RedriveFailed(ctx, "b", "twin-in-b")
	require.NoError(t, err)
	require.Equal(t, "b", q)
}
