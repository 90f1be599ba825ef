package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// testClock is a clock a test moves by hand (Add) or sets (Set).
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t.
func (c *testClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestLifetimeEndsAJobNobodyServes: a key's job carries its key's lifetime as its deadline, and
// once that has passed with no worker serving its queue, both protocols answer the error the
// worker will end it with (JOB_EXPIRED, nothing paid) instead of "processing" for ever.
func TestLifetimeEndsAJobNobodyServes(t *testing.T) {
	t.Parallel()
	const key = "gk-idle-2d5e8a0c6b1f4e93"
	keys, err := gateway.ParseKeys("keys.yaml", []byte("keys:\n"+
		"  - {name: idle, key: "+key+", queue: nobody, lifetime: 1m}\n"+
		"  - {name: alpha, key: "+alphaKey+", queue: alpha}\n"))
	require.NoError(t, err)
	clock := &testClock{now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	b := setupAt(t, keys, clock.Now)

	viaCreateTask := taskID(t, b.call(t, gateway.MethodCreateTask, create(key, recaptchaTask("solve"))))
	via2captcha := b.tcSubmit(t, viaForm, params("key", key, "method", "userrecaptcha", "googlekey", "solve", "pageurl", "https://shop.example/login"), nil)
	withDefault := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("solve"))))

	// The job's deadline is its key's lifetime after its submission; a key without one has the default.
	for _, tt := range []struct {
		key, name string
		id        int64
		lifetime  time.Duration
	}{{key, "idle", viaCreateTask, time.Minute}, {key, "idle", via2captcha, time.Minute}, {alphaKey, "alpha", withDefault, gateway.LifetimeDefault}} {
		jobID, err := b.handler.JobID(context.Background(), tt.name, tt.id)
		require.NoError(t, err)
		queue := map[string]string{"idle": "nobody", "alpha": "alpha"}[tt.name]
		info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo(queue, jobID)
		require.NoError(t, err)
		p, err := jobwire.DecodePayload(info.Payload)
		require.NoError(t, err)
		require.Equal(t, clock.Now().Add(tt.lifetime), p.Deadline, "key %s", tt.name)
	}

	result := func(id int64) map[string]any {
		return b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": key, "taskId": id})
	}
	res := func(id int64) string {
		return b.tcCall(t, viaGET, gateway.PathRes, params("key", key, "action", "get", "id", fmt.Sprint(id), "json", "1"), nil)
	}
	clock.Add(time.Minute - time.Second)
	require.Equal(t, "processing", result(viaCreateTask)["status"], "within its lifetime")
	require.JSONEq(t, `{"status":0,"request":"CAPCHA_NOT_READY"}`, res(via2captcha))

	clock.Add(time.Second)
	for _, id := range []int64{viaCreateTask, via2captcha} {
		a := result(id)
		require.Equal(t, "failed", a["status"], "%v", a)
		require.Equal(t, json.Number("1"), a["errorId"])
		require.Equal(t, "ERROR_CAPTCHA_UNSOLVABLE", a["errorCode"])
		require.Equal(t, "JOB_EXPIRED: the job's deadline passed before any attempt", a["errorDescription"])
		var tc map[string]any
		require.NoError(t, json.Unmarshal([]byte(res(id)), &tc))
		require.Equal(t, "ERROR_CAPTCHA_UNSOLVABLE", tc["request"])
		require.Contains(t, tc["error_text"], "JOB_EXPIRED")
	}
	requirePending(t, b, "nobody", 2) // a worker that comes ends them JOB_EXPIRED, paying nothing
}

// TestPastDeadline: the outcome the gateway answers for a job that has not ended, once its
// deadline has passed, is the end the worker's decision gives it.
func TestPastDeadline(t *testing.T) {
	t.Parallel()
	deadline := time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC)
	held := &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "BUDGET_SPENT", ErrorDescription: "the queue's budget is spent"}
	retried := &enqueue.ErrorInfo{ErrorID: 2, ErrorCode: "INTERNAL_ERROR", ErrorDescription: "try again"}
	tests := []struct {
		name      string
		out       enqueue.Outcome
		at        time.Duration // after the deadline
		wantState enqueue.State
		wantCode  string
		wantDesc  string
	}{
		{name: "before the deadline", out: enqueue.Outcome{State: enqueue.StatePending}, at: -time.Second, wantState: enqueue.StatePending},
		{name: "no deadline", out: enqueue.Outcome{State: enqueue.StatePending}, at: time.Hour, wantState: enqueue.StatePending},
		{name: "ended before", out: enqueue.Outcome{State: enqueue.StateSolved}, at: time.Hour, wantState: enqueue.StateSolved},
		{name: "pending, never tried", out: enqueue.Outcome{State: enqueue.StatePending}, wantState: enqueue.StateFailed,
			wantCode: "JOB_EXPIRED", wantDesc: "the job's deadline passed before any attempt"},
		{name: "held by a spent budget", out: enqueue.Outcome{State: enqueue.StateRetrying, Error: held}, wantState: enqueue.StateDead,
			wantCode: "BUDGET_SPENT", wantDesc: "the queue's budget is spent (then the job's deadline passed)"},
		{name: "created a task: may still be polling it", out: enqueue.Outcome{State: enqueue.StateRetrying, CreateTasks: 1, Error: retried},
			at: 4 * time.Minute, wantState: enqueue.StateRetrying},
		{name: "created a task, AnySolver forgot it", out: enqueue.Outcome{State: enqueue.StateRetrying, CreateTasks: 1, Error: retried},
			at: 5 * time.Minute, wantState: enqueue.StateDead, wantCode: "INTERNAL_ERROR", wantDesc: "try again (then the job's deadline passed)"},
		{name: "active: may be polling", out: enqueue.Outcome{State: enqueue.StateActive}, at: time.Minute, wantState: enqueue.StateActive},
		{name: "active long past", out: enqueue.Outcome{State: enqueue.StateActive}, at: 5 * time.Minute, wantState: enqueue.StateDead,
			wantCode: "JOB_EXPIRED", wantDesc: "the job's deadline passed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			out := tt.out
			if tt.name != "no deadline" {
				out.Deadline = deadline
			}
			got := gateway.PastDeadline(out, deadline.Add(tt.at))
			require.Equal(t, tt.wantState, got.State)
			if tt.wantCode == "" {
				require.Equal(t, out, got, "unchanged")
				return
			}
			require.Equal(t, tt.wantCode, got.Error.ErrorCode)
			require.Equal(t, tt.wantDesc, got.Error.ErrorDescription)
			require.Equal(t, deadline, got.FinishedAt)
			require.NotSame(t, tt.out.Error, got.Error, "the outcome given is never changed")
		})
	}
	require.Equal(t, "the queue's budget is spent", held.ErrorDescription)
}
