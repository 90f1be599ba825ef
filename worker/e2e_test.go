package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

const testAPIKey = workertest.APIKey

// testBundle is the rig (a real redis-server, the fake AnySolver over real HTTP), a running
// worker and a producer client.
type testBundle struct {
	rig    *workertest.Rig
	rc     redis.UniversalClient
	fake   *anysolvertest.Server
	client *enqueue.Client
	admin  *admin.Client
	worker *worker.Worker
	logs   *enqueuetest.LogBuffer
	policy *worker.Policy
}

// fastPolicy keeps the default decisions with retries that come back in a blink.
func fastPolicy(t testing.TB) *worker.Policy {
	p, err := policyfile.Parse("test-policy.yaml", []byte("retry:\n  maxRetries: 5\n  baseDelay: 100ms\n  maxDelay: 500ms\n"))
	require.NoError(t, err)
	return p
}

func setup(t *testing.T) *testBundle {
	t.Helper()
	b := &testBundle{logs: &enqueuetest.LogBuffer{}}
	b.rig = workertest.New(t, anysolvertest.Options{APIKeys: []string{testAPIKey},
		Script: anysolvertest.DirectiveScript(func(t anysolvertest.Task) anysolvertest.Behavior {
			bh := anysolvertest.DefaultBehavior(t)
			if !bh.Immediate {
				bh.SolveTime = 300 * time.Millisecond
			}
			return bh
		})})
	b.rc, b.fake = b.rig.RC, b.rig.Fake
	var err error
	b.client, err = enqueue.NewClient(enqueue.Config{Redis: b.rc})
	require.NoError(t, err)
	b.admin, err = admin.NewClient(admin.Config{Redis: b.rc})
	require.NoError(t, err)
	b.policy = fastPolicy(t)
	b.startWorker(t, testAPIKey)
	return b
}

func (b *testBundle) startWorker(t *testing.T, key string) {
	t.Helper()
	// The client's default Timeout: a shorter one turns a slow answer on a busy machine into a
	// retry, and a createTask more than the counts below expect.
	as := b.rig.AnySolver(t, anysolver.Config{APIKey: key})
	cfg := worker.Config{Redis: b.rc, AnySolver: as, Policy: b.policy, Queues: map[string]int{"default": 1},
		Concurrency: 50, ShutdownTimeout: time.Second,
		Poll:    worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond},
		Breaker: worker.BreakerConfig{ProbeMin: 200 * time.Millisecond, ProbeMax: time.Second},
		Logger:  slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	b.worker, _ = b.rig.Start(t, cfg)
}

func recaptcha(id, websiteKey string) enqueue.Job {
	return enqueue.Job{ID: id, Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
		"websiteURL": "https://shop.example/login", "websiteKey": websiteKey}}
}

func (b *testBundle) submitAndWait(t *testing.T, job enqueue.Job) enqueue.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute) // a hang guard
	defer cancel()
	id, err := b.client.Submit(ctx, job)
	require.NoError(t, err)
	out, err := b.client.Wait(ctx, id)
	require.NoError(t, err, "job %s did not end", id)
	return out
}

func TestEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		websiteKey string
		wantState  enqueue.State
		wantCode   string
		wantCreate int
		check      func(t *testing.T, b *testBundle, out enqueue.Outcome)
	}{
		{name: "solved at once", websiteKey: "site-key-plain", wantState: enqueue.StateSolved, wantCreate: 1},
		{name: "DOMAIN_BANNED fails", websiteKey: "sq:create=DOMAIN_BANNED*9", wantState: enqueue.StateFailed, wantCode: "DOMAIN_BANNED", wantCreate: 1},
		{name: "INVALID_SITEKEY fails", websiteKey: "sq:create=INVALID_SITEKEY*9", wantState: enqueue.StateFailed, wantCode: "INVALID_SITEKEY", wantCreate: 1},
		{name: "SERVICE_UNAVAILABLE twice then ok", websiteKey: "sq:create=SERVICE_UNAVAILABLE*2", wantState: enqueue.StateSolved, wantCreate: 3},
		{name: "INTERNAL_ERROR once", websiteKey: "sq:create=INTERNAL_ERROR", wantState: enqueue.StateSolved, wantCreate: 2},
		{name: "HTML 502 once", websiteKey: "sq:http=html502", wantState: enqueue.StateSolved, wantCreate: 2},
		{name: "TASK_NOT_FOUND on first poll re-creates", websiteKey: "sq:poll=TASK_NOT_FOUND", wantState: enqueue.StateSolved, wantCreate: 2},
		{name: "status failed CAPTCHA_UNSOLVABLE re-creates", websiteKey: "sq:failed=CAPTCHA_UNSOLVABLE", wantState: enqueue.StateSolved, wantCreate: 2},
		{name: "RATE_LIMITED once is throttled, budget untouched", websiteKey: "sq:create=RATE_LIMITED", wantState: enqueue.StateSolved, wantCreate: 2,
			check: func(t *testing.T, b *testBundle, out enqueue.Outcome) {
				require.Equal(t, 1, out.Throttles)
				require.Equal(t, 0, out.Retries)
				info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo(out.Queue, out.ID)
				require.NoError(t, err)
				require.Equal(t, 0, info.Retried, "a throttle must not spend asynq's retry count")
			}},
		{name: "UNKNOWN_PROVIDER_ERROR is dead", websiteKey: "sq:create=UNKNOWN_PROVIDER_ERROR*9", wantState: enqueue.StateDead, wantCode: "UNKNOWN_PROVIDER_ERROR", wantCreate: 1},
		{name: "a code not in the seed is dead", websiteKey: "sq:create=BRAND_NEW_THING/1*9", wantState: enqueue.StateDead, wantCode: "BRAND_NEW_THING", wantCreate: 1},
	}
	b := setup(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			key := tt.websiteKey
			if strings.HasPrefix(key, "sq:") {
				key += fmt.Sprintf(";id=e2e-%d", i)
			} else {
				key += fmt.Sprintf("-%d", i)
			}
			out := b.submitAndWait(t, recaptcha(fmt.Sprintf("e2e-%d", i), key))
			require.Equal(t, tt.wantState, out.State, "outcome: %+v", out)
			require.Equal(t, tt.wantCreate, b.fake.Creates(key), "createTask calls the fake saw")
			require.Equal(t, tt.wantCreate, out.CreateTasks)
			if tt.wantCode != "" {
				require.NotNil(t, out.Error)
				require.Equal(t, tt.wantCode, out.Error.ErrorCode)
			}
			if tt.wantState == enqueue.StateSolved {
				require.NotEmpty(t, out.Solution)
			}
			_, dlqErr := b.admin.DeadLetter(context.Background(), "default", out.ID)
			if tt.wantState == enqueue.StateDead {
				require.NoError(t, dlqErr, "a dead job is in the durable dead-letter queue")
				info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo("default", out.ID)
				require.NoError(t, err)
				require.Equal(t, asynq.TaskStateArchived, info.State, "and in asynq's archive for the web UI")
			} else {
				require.ErrorIs(t, dlqErr, enqueue.ErrJobNotFound, "only dead jobs go to the dead-letter queue")
			}
			if tt.check != nil {
				tt.check(t, b, out)
			}
		})
	}
}

func TestImageToTextAnsweredAtCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.submitAndWait(t, enqueue.Job{ID: "img-1", Task: map[string]any{"type": "ImageToTextTask", "body": "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"}})
	require.Equal(t, enqueue.StateSolved, out.State)
	require.Equal(t, 1, out.CreateTasks)
	require.Equal(t, 0, out.Polls)
	require.Equal(t, 0, b.fake.Calls("getTaskResult"))
}

func TestDeadJobRedrivenOnceFixed(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	key := "sq:id=redrive;create=UNKNOWN_PROVIDER_ERROR*1"
	out := b.submitAndWait(t, recaptcha("redrive-1", key))
	require.Equal(t, enqueue.StateDead, out.State)
	letters, err := b.admin.DeadLetters(ctx)
	require.NoError(t, err)
	require.Len(t, letters, 1)
	require.Equal(t, "redrive-1", letters[0].ID)

	// The fake now solves this key (its one scripted failure is spent): redrive.
	require.NoError(t, b.admin.Redrive(ctx, letters[0]))
	out, err = b.client.Wait(ctx, "redrive-1")
	require.NoError(t, err)
	require.Equal(t, enqueue.StateSolved, out.State)
	require.Equal(t, 2, b.fake.Creates(key))
	letters, err = b.admin.DeadLetters(ctx)
	require.NoError(t, err)
	require.Empty(t, letters)
	info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo("default", "redrive-1")
	require.NoError(t, err)
	require.Equal(t, 0, info.Retried, "a redrive starts with a fresh retry budget")
}

func TestPoisonPayloadFailsAndWorkerKeepsServing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ac := asynq.NewClientFromRedisClient(b.rc)
	for i, payload := range []string{`garbage{{`, `{"v":1}`, `{"v":99,"task":{"type":"X"}}`, `{"v":1,"task":{"type":"RecaptchaV2TaskProxyless"}}`} {
		_, err := ac.Enqueue(asynq.NewTask(jobwire.TaskType, []byte(payload)), asynq.TaskID(fmt.Sprintf("poison-%d", i)), asynq.Retention(time.Hour))
		require.NoError(t, err)
	}
	for i := range 4 {
		out, err := b.client.Wait(context.Background(), fmt.Sprintf("poison-%d", i))
		require.NoError(t, err)
		require.Equal(t, enqueue.StateFailed, out.State)
		require.Equal(t, classify.CodeInvalidPayload, out.Error.ErrorCode)
		require.NotEmpty(t, out.Error.ErrorDescription)
	}
	out := b.submitAndWait(t, recaptcha("after-poison", "site-key-after-poison"))
	require.Equal(t, enqueue.StateSolved, out.State)
	require.Equal(t, 1, b.fake.Calls("createTask"), "poison never reached AnySolver")
}

func TestAPIKeyNeverInRedisOrLogs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for i, key := range []string{"secret-check-ok", "sq:create=UNKNOWN_PROVIDER_ERROR*9;id=k", "sq:create=DOMAIN_BANNED*9;id=k2", "sq:create=SERVICE_UNAVAILABLE;id=k3"} {
		b.submitAndWait(t, recaptcha(fmt.Sprintf("secret-%d", i), key))
	}
	ctx := context.Background()
	keys, err := b.rc.Keys(ctx, "*").Result()
	require.NoError(t, err)
	require.NotEmpty(t, keys)
	for _, k := range keys {
		dump, err := b.rc.Dump(ctx, k).Result()
		require.NoError(t, err)
		require.NotContains(t, dump, testAPIKey, "Redis key %s holds the API key", k)
	}
	require.NotContains(t, b.logs.String(), testAPIKey)
	require.Contains(t, b.logs.String(), `"msg":"job ended"`)
}

func TestRecordLivesInAsynqResult(t *testing.T) {
	t.Parallel()
	b := setup(t)
	out := b.submitAndWait(t, recaptcha("record-1", "site-key-record"))
	info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo("default", out.ID)
	require.NoError(t, err)
	var rec jobwire.Record
	require.NoError(t, json.Unmarshal(info.Result, &rec), "the worker's record is asynq's task result (key layout %s)", "asynq:{q}:t:id")
	require.Equal(t, enqueue.StateSolved, rec.State)
	require.Equal(t, 1, rec.CreateTasks)
}
