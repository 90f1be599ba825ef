package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// handlerBundle runs the solve handler alone, without an asynq server: ProcessTask is called on a
// task built with asynq.NewTask, against miniredis and the fake AnySolver over real HTTP. Outside
// a server the task has no id or queue, so its record lives in the task hash asynq would use for
// them, "asynq:{}:t:", which the bundle creates as asynq's enqueue would.
type handlerBundle struct {
	mr      *miniredis.Miniredis
	rc      *redis.Client
	fake    *anysolvertest.Server
	worker  *worker.Worker
	handler asynq.Handler
}

const handlerTaskKey = "asynq:{}:t:"

func setupHandler(t *testing.T) *handlerBundle {
	t.Helper()
	return setupHandlerPolling(t, worker.PollConfig{Fixed: true, Interval: 10 * time.Millisecond})
}

// setupHandlerPolling runs the handler against the fake, polling as poll says.
func setupHandlerPolling(t *testing.T, poll worker.PollConfig) *handlerBundle {
	t.Helper()
	fake := anysolvertest.New(anysolvertest.Options{APIKeys: []string{testAPIKey}, Balance: 100,
		Script: anysolvertest.DirectiveScript(nil)})
	b := setupHandlerWithPolling(t, fake, poll)
	b.fake = fake
	return b
}

// setupHandlerWith runs the handler against any AnySolver, a hostile one say.
func setupHandlerWith(t *testing.T, anySolver http.Handler) *handlerBundle {
	t.Helper()
	return setupHandlerWithPolling(t, anySolver, worker.PollConfig{Fixed: true, Interval: 10 * time.Millisecond})
}

func setupHandlerWithPolling(t *testing.T, anySolver http.Handler, poll worker.PollConfig) *handlerBundle {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	srv := httptest.NewServer(anySolver)
	t.Cleanup(srv.Close)
	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: testAPIKey})
	require.NoError(t, err)
	w, err := worker.New(worker.Config{Redis: rc, AnySolver: as, Queues: map[string]int{"default": 1},
		Poll:     poll,
		Breaker:  worker.BreakerConfig{Disabled: true},
		Observer: worker.NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	require.NoError(t, rc.HSet(context.Background(), handlerTaskKey, "msg", "x").Err())
	return &handlerBundle{mr: mr, rc: rc, worker: w, handler: w.Handler()}
}

func solveJob(websiteKey string) []byte {
	return []byte(`{"v":1,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":"` +
		websiteKey + `"},"submittedAt":"` + time.Now().UTC().Format(time.RFC3339) + `"}`)
}

func (b *handlerBundle) record(t *testing.T) jobwire.Record {
	t.Helper()
	raw, err := b.rc.HGet(context.Background(), handlerTaskKey, "result").Bytes()
	if errors.Is(err, redis.Nil) {
		return jobwire.Record{}
	}
	require.NoError(t, err)
	rec, err := jobwire.DecodeRecord(raw)
	require.NoError(t, err)
	return rec
}

func TestProcessTask(t *testing.T) {
	t.Parallel()
	recordOf := func(r jobwire.Record) string { data, _ := json.Marshal(r); return string(data) }
	tests := []struct {
		name      string
		taskType  string
		payload   []byte
		record    string // the record found in Redis before the attempt
		wantState enqueue.State
		wantCode  string
		archived  bool // asynq is told to archive (SkipRetry)
		retried   bool // asynq is told to try again
		creates   int  // createTask calls the fake saw
	}{
		{name: "solved", payload: solveJob("sq:solve=20ms"), wantState: enqueue.StateSolved, creates: 1},
		{name: "solved at once", payload: solveJob("sq:immediate"), wantState: enqueue.StateSolved, creates: 1},
		{name: "a permanent error fails the job", payload: solveJob("sq:create=DOMAIN_BANNED"),
			wantState: enqueue.StateFailed, wantCode: "DOMAIN_BANNED", creates: 1},
		{name: "a transient error retries it", payload: solveJob("sq:create=SERVICE_UNAVAILABLE"),
			wantState: enqueue.StateRetrying, wantCode: "SERVICE_UNAVAILABLE", retried: true, creates: 1},
		{name: "an operator's error dead-letters it", payload: solveJob("sq:create=UNKNOWN_PROVIDER_ERROR"),
			wantState: enqueue.StateDead, wantCode: "UNKNOWN_PROVIDER_ERROR", archived: true, creates: 1},
		{name: "a paid task is resumed, not paid again", payload: solveJob("sq:solve=20ms"),
			record:    recordOf(jobwire.Record{State: enqueue.StateActive, Attempts: 1, CreateTasks: 1}),
			wantState: enqueue.StateSolved, creates: 1},
		{name: "an unreadable payload fails the job", payload: []byte(`{"v":1,"task":`),
			wantState: enqueue.StateFailed, wantCode: classify.CodeInvalidPayload},
		{name: "an unreadable record never pays twice", payload: solveJob("sq:solve=20ms"), record: `{"state":`,
			wantState: enqueue.StateDead, wantCode: classify.CodeRecordUnreadable, archived: true},
		{name: "a redelivered solved job ends as recorded", payload: solveJob("sq:solve=20ms"),
			record:    recordOf(jobwire.Record{State: enqueue.StateSolved, Attempts: 1, CreateTasks: 1, Solution: json.RawMessage(`{"token":"t"}`)}),
			wantState: enqueue.StateSolved},
		{name: "a foreign task is archived, not run", taskType: "email:send", payload: []byte(`{}`), archived: true},
		// 10 ms polls of a 2 s task: 120 polls were spent in 1.2 s, and the paid task was given
		// up and bought again. Only the task's lifetime ends its polling.
		{name: "a slow task polled at a short fixed interval is paid once", payload: solveJob("sq:solve=2s"),
			wantState: enqueue.StateSolved, creates: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupHandler(t)
			ctx := context.Background()
			if tt.name == "a paid task is resumed, not paid again" {
				// Pay for a task first, as a worker that then died would have.
				res, err := anysolverCreate(t, b, "sq:solve=20ms")
				require.NoError(t, err)
				rec := jobwire.Record{State: enqueue.StateActive, Attempts: 1, CreateTasks: 1,
					Remote: &jobwire.Remote{TaskID: res, CreatedAt: time.Now().UTC()}}
				tt.record = recordOf(rec)
			}
			if tt.record != "" {
				require.NoError(t, b.rc.HSet(ctx, handlerTaskKey, "result", tt.record).Err())
			}
			typ := tt.taskType
			if typ == "" {
				typ = jobwire.TaskType
			}
			err := b.handler.ProcessTask(ctx, asynq.NewTask(typ, tt.payload))
			require.Equal(t, tt.archived, errors.Is(err, asynq.SkipRetry), "archived: %v", err)
			if !tt.archived && !tt.retried {
				require.NoError(t, err)
			}
			if tt.retried {
				require.Error(t, err)
			}
			require.Equal(t, tt.creates, b.fake.Stats().CreateTask, "createTask calls")
			rec := b.record(t)
			require.Equal(t, tt.wantState, rec.State)
			if tt.wantCode == "" {
				require.Nil(t, rec.Error)
			} else {
				require.NotNil(t, rec.Error)
				require.Equal(t, tt.wantCode, rec.Error.ErrorCode)
			}
			if tt.wantState == enqueue.StateDead {
				entries, err := b.rc.HGetAll(ctx, keys.DeadLetters("")).Result()
				require.NoError(t, err)
				require.Len(t, entries, 1, "a dead job has its durable dead-letter entry")
				for _, v := range entries {
					var d deadletter.Letter
					require.NoError(t, json.Unmarshal([]byte(v), &d))
					if tt.wantCode == classify.CodeRecordUnreadable {
						require.Equal(t, tt.record, d.UnreadableRecord, "the record as found is kept for the operator")
					}
				}
			}
		})
	}
}

// anysolverCreate pays for a task on the fake directly and returns its id as the record keeps it.
func anysolverCreate(t *testing.T, b *handlerBundle, websiteKey string) (json.RawMessage, error) {
	t.Helper()
	srv := httptest.NewServer(b.fake)
	t.Cleanup(srv.Close)
	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: testAPIKey})
	require.NoError(t, err)
	res, err := as.CreateTask(context.Background(), anysolver.CreateTaskRequest{Task: map[string]any{
		"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": websiteKey}})
	if err != nil {
		return nil, err
	}
	return json.Marshal(res.TaskID)
}

// TestProcessTaskKeepsEchoedSecretsOut plays a hostile AnySolver that echoes the API key and the
// job's proxy password back in every place an answer has: the errorCode, a long errorDescription
// (where cutting before redacting would keep a secret's first bytes), and a solution. None of it
// may reach the record, which Redis, the dead-letter list and the web UI show.
func TestProcessTaskKeepsEchoedSecretsOut(t *testing.T) {
	t.Parallel()
	const proxyPassword = "PROXYPW!SECRET42"
	payload := []byte(`{"v":1,"task":{"type":"RecaptchaV2Task","websiteURL":"https://shop.example/login","websiteKey":"k",` +
		`"proxyType":"http","proxyAddress":"10.0.0.1","proxyPort":8080,"proxyLogin":"u","proxyPassword":"` + proxyPassword + `"},` +
		`"submittedAt":"` + time.Now().UTC().Format(time.RFC3339) + `"}`)
	tests := []struct {
		name   string
		answer string // createTask's answer
		state  enqueue.State
	}{
		{"key after 500 bytes of description", `{"errorId":1,"errorCode":"DOMAIN_BANNED","errorDescription":"` +
			strings.Repeat("A", 500) + testAPIKey + `"}`, enqueue.StateFailed},
		{"password after 500 bytes of description", `{"errorId":1,"errorCode":"DOMAIN_BANNED","errorDescription":"` +
			strings.Repeat("A", 500) + proxyPassword + `"}`, enqueue.StateFailed},
		{"password in the code", `{"errorId":1,"errorCode":"ERROR_PROXY_` + proxyPassword + `","errorDescription":"x"}`, enqueue.StateDead},
		{"key in the code, in another case", `{"errorId":1,"errorCode":"ERROR_` + strings.ToUpper(testAPIKey) + `"}`, enqueue.StateDead},
		{"password percent-encoded, in another case", `{"errorId":1,"errorCode":"DOMAIN_BANNED","errorDescription":"PrOxYpW%21sEcReT42"}`, enqueue.StateFailed},
		{"key in the solution", `{"errorId":0,"status":"ready","solution":{"token":"t-` + testAPIKey + `","echo":"` +
			strings.ToUpper(testAPIKey) + `"}}`, enqueue.StateSolved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			hostile := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tt.answer)
			})
			b := setupHandlerWith(t, hostile)
			_ = b.handler.ProcessTask(context.Background(), asynq.NewTask(jobwire.TaskType, payload))
			rec := b.record(t)
			require.Equal(t, tt.state, rec.State)
			stored, err := b.rc.HGet(context.Background(), handlerTaskKey, "result").Result()
			require.NoError(t, err)
			dead, err := b.rc.HGetAll(context.Background(), keys.DeadLetters("")).Result()
			require.NoError(t, err)
			for _, v := range dead {
				// The payload itself carries the password to AnySolver, by design; its record must not.
				var d deadletter.Letter
				require.NoError(t, json.Unmarshal([]byte(v), &d))
				data, err := json.Marshal(d.Record)
				require.NoError(t, err)
				stored += string(data)
			}
			lower := strings.ToLower(stored)
			for _, secret := range []string{testAPIKey, proxyPassword} {
				require.NotContains(t, lower, strings.ToLower(secret[:6]), "a secret's first bytes were stored: %s", stored)
			}
		})
	}
}

func TestProcessTaskImageBodies(t *testing.T) {
	t.Parallel()
	imageJob := func(ref string) []byte {
		return []byte(`{"v":1,"task":{"type":"ImageToTextTask"},"bodyRef":"` + ref + `","submittedAt":"` +
			time.Now().UTC().Format(time.RFC3339) + `"}`)
	}
	t.Run("a solved job's body is deleted", func(t *testing.T) {
		t.Parallel()
		b := setupHandler(t)
		ctx := context.Background()
		ref := keys.BodyPrefix + "img-1"
		require.NoError(t, b.rc.Set(ctx, ref, "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", time.Hour).Err())
		require.NoError(t, b.handler.ProcessTask(ctx, asynq.NewTask(jobwire.TaskType, imageJob(ref))))
		require.Equal(t, enqueue.StateSolved, b.record(t).State)
		require.Equal(t, int64(0), b.rc.Exists(ctx, ref).Val(), "the body is gone with the job")
	})
	t.Run("a reference outside the blob prefix is never read", func(t *testing.T) {
		t.Parallel()
		b := setupHandler(t)
		ctx := context.Background()
		require.NoError(t, b.rc.Set(ctx, "app:session:secret", "do-not-send", 0).Err())
		require.NoError(t, b.handler.ProcessTask(ctx, asynq.NewTask(jobwire.TaskType, imageJob("app:session:secret"))))
		rec := b.record(t)
		require.Equal(t, enqueue.StateFailed, rec.State)
		require.Equal(t, classify.CodeInvalidPayload, rec.Error.ErrorCode)
		require.Zero(t, b.fake.Stats().CreateTask, "nothing was sent to AnySolver")
		require.Equal(t, int64(1), b.rc.Exists(ctx, "app:session:secret").Val(), "nor deleted")
	})
}

// TestAttemptWaitingForItsPollEndsWithItsContext: an attempt waiting an hour for its next poll
// ends as soon as asynq ends its context (a deadline, a lease lost, an operator's cancel, a
// shutdown handing it back), without polling, and keeps the paid remote task's id for the next
// attempt to resume.
func TestAttemptWaitingForItsPollEndsWithItsContext(t *testing.T) {
	t.Parallel()
	b := setupHandlerPolling(t, worker.PollConfig{Fixed: true, Interval: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	returned := make(chan error, 1)
	go func() {
		returned <- b.handler.ProcessTask(ctx, asynq.NewTask(jobwire.TaskType, solveJob("sq:solve=1h")))
	}()
	require.Eventually(t, func() bool { return worker.WaitingAttempts(b.worker) == 1 }, 10*time.Second, time.Millisecond,
		"the attempt created its remote task and waits for its first poll")

	cancel()
	select {
	case err := <-returned:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the attempt still waits for its poll an hour away after its context ended")
	}
	require.NotNil(t, b.record(t).Remote, "the paid remote task's id is kept for the next attempt")
	st := b.fake.Stats()
	require.Equal(t, 1, st.CreateTask)
	require.Zero(t, st.GetTaskResult, "no poll after the context ended")
	require.Zero(t, worker.WaitingAttempts(b.worker))
}
