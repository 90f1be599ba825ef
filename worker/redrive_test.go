package worker_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// TestRedriveRunsAsAFreshStart: a redriven dead job gets a fresh lifetime from the redrive. One
// that died of its deadline runs an attempt under a deadline as long as its first (not failed
// JOB_EXPIRED at once); one redriven more than the worker's lifetime (24 h) after its
// submission is throttled on its first throttle, not dead.
func TestRedriveRunsAsAFreshStart(t *testing.T) {
	t.Parallel()
	b := setup(t)
	now := time.Now().UTC()
	tests := []struct {
		name       string
		websiteKey string
		payload    jobwire.Payload // SubmittedAt and Deadline as the job first had them
		check      func(t *testing.T, out enqueue.Outcome, p jobwire.Payload)
	}{
		{name: "died of its deadline", websiteKey: "site-key-expired",
			payload: jobwire.Payload{SubmittedAt: now.Add(-2 * time.Hour), Deadline: now.Add(-time.Hour)},
			check: func(t *testing.T, out enqueue.Outcome, p jobwire.Payload) {
				require.Equal(t, 1, out.CreateTasks, "an attempt ran")
				require.Equal(t, time.Hour, p.Deadline.Sub(p.SubmittedAt), "a deadline as long as the first")
			}},
		{name: "redriven a day after its submission", websiteKey: "sq:id=redrive-late;create=RATE_LIMITED",
			payload: jobwire.Payload{SubmittedAt: now.Add(-25 * time.Hour)},
			check: func(t *testing.T, out enqueue.Outcome, p jobwire.Payload) {
				require.Equal(t, 1, out.Throttles, "throttled once, not dead")
				require.Equal(t, 2, out.CreateTasks)
				require.True(t, p.Deadline.IsZero())
			}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
			defer cancel()
			id := "redrive-fresh-" + string(rune('a'+i))
			p := tt.payload
			p.V = jobwire.PayloadVersion
			p.Task = recaptcha(id, tt.websiteKey).Task
			data, err := json.Marshal(p)
			require.NoError(t, err)
			d := deadletter.Letter{ID: id, Queue: "default", Payload: data, DeadAt: now.Add(-time.Hour),
				Record: jobwire.Record{State: enqueue.StateDead, Attempts: 6, CreateTasks: 6,
					Error: &enqueue.ErrorInfo{ErrorCode: "SERVICE_UNAVAILABLE", Decision: "dead"}}}
			require.NoError(t, deadletter.Put(ctx, b.rc, d, 0))

			require.NoError(t, b.admin.Redrive(ctx, d))
			out, err := b.client.Wait(ctx, id)
			require.NoError(t, err)
			require.Equal(t, enqueue.StateSolved, out.State, "outcome: %+v", out)
			require.NotEmpty(t, out.Solution)
			require.Equal(t, out.CreateTasks, b.fake.Creates(tt.websiteKey))
			info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo("default", id)
			require.NoError(t, err)
			redriven, err := jobwire.DecodePayload(info.Payload)
			require.NoError(t, err)
			require.True(t, redriven.SubmittedAt.After(now), "timings count from the redrive")
			require.True(t, out.SubmittedAt.Equal(redriven.SubmittedAt))
			tt.check(t, out, redriven)
		})
	}
}

// TestRedrivenJobTookCountsFromTheRedrive: the "job ended" line of a redriven job says how long
// the run since the redrive took, not the time since the job was first submitted two hours ago.
func TestRedrivenJobTookCountsFromTheRedrive(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	defer cancel()
	now := time.Now().UTC()
	const id = "redrive-took"
	p := jobwire.Payload{V: jobwire.PayloadVersion, Task: recaptcha(id, "site-key-took").Task,
		SubmittedAt: now.Add(-2 * time.Hour)}
	data, err := json.Marshal(p)
	require.NoError(t, err)
	d := deadletter.Letter{ID: id, Queue: "default", Payload: data, DeadAt: now.Add(-time.Hour),
		Record: jobwire.Record{State: enqueue.StateDead, Attempts: 6, CreateTasks: 6,
			FinishedAt: now.Add(-time.Hour), Error: &enqueue.ErrorInfo{ErrorCode: "SERVICE_UNAVAILABLE", Decision: "dead"}}}
	require.NoError(t, deadletter.Put(ctx, b.rc, d, 0))
	require.NoError(t, b.admin.Redrive(ctx, d))
	out, err := b.client.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, enqueue.StateSolved, out.State, "outcome: %+v", out)

	var took time.Duration
	for line := range strings.Lines(b.logs.String()) {
		var l struct {
			Msg   string        `json:"msg"`
			JobID string        `json:"job_id"`
			Took  time.Duration `json:"took"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == "job ended" && l.JobID == id {
			took = l.Took
		}
	}
	require.Positive(t, took, "the job's end is logged with how long it took")
	require.Less(t, took, time.Hour, "took counts from the redrive, not from the first submission")
	require.LessOrEqual(t, took, out.FinishedAt.Sub(out.SubmittedAt)+time.Millisecond)
}
