package attempt

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// TestCallbackScheduledOncePerOutcome: each outcome of a job is one delivery in callback.Queue,
// whose id carries the outcome's sequence number: the same outcome scheduled again (a
// redelivered job replaying its record) is the delivery already there, while a redrive's outcome
// is a delivery of its own beside the first one's.
func TestCallbackScheduledOncePerOutcome(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := enqueuetest.Redis(t)
	rc, err := redisconn.Open(ctx, r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	c := callback.New(callback.Params{Redis: rc, Window: callback.WindowDefault, Backoff: callback.BackoffDefault,
		Observer: metrics.NopObserver{}, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now})
	ended := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	job := func(redrives int, state enqueue.State) (*attempt, Transition) {
		p := jobwire.Payload{V: jobwire.PayloadVersion, Task: map[string]any{"type": "ImageToTextTask", "body": "AA=="},
			CallbackURL: "https://hooks.example/cb", Redrives: redrives, SubmittedAt: ended.Add(-time.Minute)}
		raw, err := json.Marshal(p)
		require.NoError(t, err)
		rec := jobwire.Record{State: state, Attempts: 1, FinishedAt: ended.Add(time.Duration(redrives) * time.Hour)}
		return &attempt{id: "order-7", queue: "default", raw: raw, payload: p},
			Transition{State: state, Record: rec, Write: true, Report: reportEnded}
	}
	for _, tt := range []struct {
		name      string
		redrives  int
		state     enqueue.State
		redeliver bool // the payload was not read: only the raw one is there
		wantIDs   []string
	}{
		{name: "first outcome", state: enqueue.StateDead, wantIDs: []string{"cb-order-7-1"}},
		{name: "first outcome replayed", state: enqueue.StateDead, redeliver: true, wantIDs: []string{"cb-order-7-1"}},
		{name: "the redrive's outcome", redrives: 1, state: enqueue.StateSolved, wantIDs: []string{"cb-order-7-1", "cb-order-7-2"}},
		{name: "the redrive's outcome replayed", redrives: 1, state: enqueue.StateSolved, redeliver: true,
			wantIDs: []string{"cb-order-7-1", "cb-order-7-2"}},
	} {
		a, tr := job(tt.redrives, tt.state)
		if tt.redeliver {
			a.payload, tr.Report = jobwire.Payload{}, reportRedelivered
		}
		require.NoError(t, scheduleCallback(ctx, c, a, tr), tt.name)
		tasks, err := asynq.NewInspectorFromRedisClient(rc).ListPendingTasks(callback.Queue)
		require.NoError(t, err, tt.name)
		var ids []string
		for _, task := range tasks {
			ids = append(ids, task.ID)
			var p callback.Payload
			require.NoError(t, json.Unmarshal(task.Payload, &p))
			var body map[string]any
			require.NoError(t, json.Unmarshal(p.Body, &body))
			require.Equal(t, "order-7", body["id"])
			require.Equal(t, fmt.Sprintf("cb-order-7-%v", body["outcomeSeq"]), task.ID, tt.name)
		}
		require.ElementsMatch(t, tt.wantIDs, ids, tt.name)
	}
	queues, err := queuereg.Known(ctx, rc)
	require.NoError(t, err)
	require.NotContains(t, queues, callback.Queue, "the callback queue is no job queue")
}
