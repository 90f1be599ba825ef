package anysolver_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

func TestSolvedViaPoll(t *testing.T) {
	t.Parallel()
	clock := anysolvertest.NewClock(time.Unix(1_700_000_000, 0))
	b := setup(t, anysolvertest.Options{Now: clock.Now}, anysolver.Config{})
	ctx := ctxT(t)

	// The fake alternates numeric (first) and string ids; both must round-trip.
	for _, wantNumeric := range []bool{true, false} {
		created, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
		require.NoError(t, err)
		require.False(t, created.Ready)
		require.False(t, created.TaskID.IsZero())
		require.Equal(t, wantNumeric, created.TaskID.IsNumeric(), created.TaskID.String())

		// Stored in a record and read back, the id keeps its JSON kind.
		raw, err := json.Marshal(created.TaskID)
		require.NoError(t, err)
		var id anysolver.TaskID
		require.NoError(t, json.Unmarshal(raw, &id))
		require.Equal(t, created.TaskID, id)

		res, err := b.client.GetTaskResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, anysolver.StatusIdle, res.Status)
		clock.Advance(time.Second)
		res, err = b.client.GetTaskResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, anysolver.StatusProcessing, res.Status)
		require.Nil(t, res.Solution)

		clock.Advance(anysolvertest.DefaultSolveTime)
		res, err = b.client.GetTaskResult(ctx, id)
		require.NoError(t, err)
		require.Equal(t, anysolver.StatusReady, res.Status)
		var sol map[string]string
		require.NoError(t, json.Unmarshal(res.Solution, &sol))
		require.Equal(t, "fake-token-"+id.String(), sol["token"])
		require.Equal(t, sol["token"], sol["gRecaptchaResponse"])
		require.InDelta(t, anysolvertest.DefaultCost, res.Cost, 1e-12)
		require.Equal(t, clock.Now().Add(-time.Second-anysolvertest.DefaultSolveTime).Unix(), res.CreateTime)
		require.Equal(t, res.CreateTime+2, res.EndTime)
	}
	require.Equal(t, 2, b.fake.Stats().Solved)
}

func TestImmediateReady(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{}, anysolver.Config{})
	res, err := b.client.CreateTask(ctxT(t), anysolver.CreateTaskRequest{Task: map[string]any{"type": "ImageToTextTask", "body": "aGVsbG8="}})
	require.NoError(t, err)
	require.True(t, res.Ready)
	require.JSONEq(t, fmt.Sprintf(`{"text":"fake-text-%s"}`, res.TaskID), string(res.Solution))
	require.InDelta(t, anysolvertest.DefaultCost, res.Cost, 1e-12)
	require.Equal(t, 0, b.fake.Calls("getTaskResult"))
}

func TestCostStringAndNumber(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{Cost: 0.0025, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{}
	}}, anysolver.Config{})
	ctx := ctxT(t)
	for i := range 4 { // the fake sends cost as a number and as a string across four tasks
		created, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
		require.NoError(t, err)
		res, err := b.client.GetTaskResult(ctx, created.TaskID)
		require.NoError(t, err, "task %d", i)
		require.Equal(t, anysolver.StatusReady, res.Status)
		require.InDelta(t, 0.0025, res.Cost, 1e-12, "task %d", i)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	const maxBody = 64 << 10
	tests := []struct {
		fault   anysolvertest.Fault
		failure classify.Failure
		status  int
	}{
		{anysolvertest.FaultHTML502, classify.FailureHTTPStatus, http.StatusBadGateway},
		{anysolvertest.FaultHTTP503, classify.FailureHTTPStatus, http.StatusServiceUnavailable},
		{anysolvertest.FaultHTTP429, classify.FailureHTTPStatus, http.StatusTooManyRequests},
		{anysolvertest.FaultGarbage, classify.FailureBadBody, http.StatusOK},
		{anysolvertest.FaultTruncated, classify.FailureBadBody, http.StatusOK},
		{anysolvertest.FaultWrongShape, classify.FailureBadBody, http.StatusOK},
		{anysolvertest.FaultHuge, classify.FailureOversizedBody, http.StatusOK},
		{anysolvertest.FaultEndless, classify.FailureOversizedBody, http.StatusOK},
		{anysolvertest.FaultHang, classify.FailureTimeout, 0},
		{anysolvertest.FaultReset, classify.FailureConnection, 0},
	}
	for _, tt := range tests {
		for _, call := range []classify.Call{classify.CallCreateTask, classify.CallGetTaskResult} {
			t.Run(string(tt.fault)+"/"+string(call), func(t *testing.T) {
				t.Parallel()
				// Only the hang needs a short Timeout; every other answer ends on its own, and a
				// short Timeout would turn a slow answer on a busy machine into a timeout.
				timeout := time.Minute
				if tt.failure == classify.FailureTimeout {
					timeout = 300 * time.Millisecond
				}
				b := setup(t, anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
					if call == classify.CallCreateTask {
						return anysolvertest.Behavior{CreateHTTP: tt.fault}
					}
					return anysolvertest.Behavior{PollHTTP: tt.fault}
				}}, anysolver.Config{Timeout: timeout, MaxBodyBytes: maxBody})
				ctx := ctxT(t)
				began := time.Now()
				created, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
				if call == classify.CallGetTaskResult {
					require.NoError(t, err)
					b.rt.read.Store(0) // count the poll's answer only
					began = time.Now()
					_, err = b.client.GetTaskResult(ctx, created.TaskID)
				}
				elapsed := time.Since(began)
				// The kind of failure shows the call ended for the fault's reason (a body cut at
				// MaxBodyBytes, a status, a reset), not by waiting out a Timeout.
				requireTransport(t, err, call, tt.failure, tt.status)
				require.LessOrEqual(t, b.rt.read.Load(), int64(maxBody+1), "read past MaxBodyBytes")
				if tt.failure == classify.FailureTimeout {
					// The client's own Timeout ended the hang: at least the Timeout, and not the
					// test's context (which would hold an error too).
					require.GreaterOrEqual(t, elapsed, 250*time.Millisecond)
					require.ErrorIs(t, err, context.DeadlineExceeded)
					require.Nil(t, ctx.Err())
				}
				if tt.fault == anysolvertest.FaultHuge {
					require.Zero(t, b.rt.read.Load(), "a declared 10 MB body is refused unread")
				}
			})
		}
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{Script: func(tk anysolvertest.Task) anysolvertest.Behavior {
		code := tk.Fields["code"].(string)
		id := int(tk.Fields["errorId"].(float64))
		if tk.Fields["poll"] == true {
			return anysolvertest.Behavior{PollError: code}
		}
		return anysolvertest.Behavior{CreateError: code, CreateErrorID: id}
	}}, anysolver.Config{})
	ctx := ctxT(t)
	type row struct {
		code string
		id   int
	}
	var rows []row
	for _, c := range classify.SeedCodes() {
		rows = append(rows, row{c.ErrorCode, c.ErrorID})
	}
	rows = append(rows, row{"BRAND_NEW_CODE", 2}, row{"ANOTHER_NEW_CODE", 1})
	for _, r := range rows {
		task := map[string]any{"type": "TurnstileTaskProxyless", "code": r.code, "errorId": r.id}
		_, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: task})
		ae := requireAPI(t, err, classify.CallCreateTask, r.code, r.id)
		require.False(t, ae.TaskFailed)
		require.Equal(t, http.StatusOK, ae.HTTPStatus)
		require.NotEmpty(t, ae.ErrorDescription)
		require.Contains(t, err.Error(), r.code)

		if r.code == "ERROR_ZERO_BALANCE" || r.code == "BRAND_NEW_CODE" {
			continue // checked at create; BRAND_NEW_CODE's errorId 2 is create-only
		}
		task["poll"] = true
		created, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: task})
		require.NoError(t, err)
		_, err = b.client.GetTaskResult(ctx, created.TaskID)
		requireAPI(t, err, classify.CallGetTaskResult, r.code, r.id)
	}
}

func TestTaskFailed(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{PollFailed: "CAPTCHA_UNSOLVABLE"}
	}}, anysolver.Config{})
	ctx := ctxT(t)
	for range 2 { // numeric id: the fake says errorId 0; string id: errorId 1
		created, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
		require.NoError(t, err)
		_, err = b.client.GetTaskResult(ctx, created.TaskID)
		ae := requireAPI(t, err, classify.CallGetTaskResult, "CAPTCHA_UNSOLVABLE", 1)
		require.True(t, ae.TaskFailed)
		require.Contains(t, err.Error(), "task failed")
	}
	require.Equal(t, 2, b.fake.Stats().Failed)
}

func TestTaskNotFoundAfterTTL(t *testing.T) {
	t.Parallel()
	clock := anysolvertest.NewClock(time.Unix(1_700_000_000, 0))
	b := setup(t, anysolvertest.Options{Now: clock.Now}, anysolver.Config{})
	ctx := ctxT(t)
	created, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	require.NoError(t, err)
	clock.Advance(anysolvertest.DefaultResultTTL - time.Second)
	res, err := b.client.GetTaskResult(ctx, created.TaskID)
	require.NoError(t, err)
	require.Equal(t, anysolver.StatusReady, res.Status)
	clock.Advance(time.Second)
	_, err = b.client.GetTaskResult(ctx, created.TaskID)
	requireAPI(t, err, classify.CallGetTaskResult, "TASK_NOT_FOUND", seedID(t, "TASK_NOT_FOUND"))
}

func TestZeroBalance(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{ZeroBalance: true}, anysolver.Config{})
	ctx := ctxT(t)
	bal, err := b.client.GetBalance(ctx)
	require.NoError(t, err)
	require.Zero(t, bal)
	_, err = b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	requireAPI(t, err, classify.CallCreateTask, "ERROR_ZERO_BALANCE", seedID(t, "ERROR_ZERO_BALANCE"))

	b.fake.SetBalance(0.5)
	_, err = b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	require.NoError(t, err)
	bal, err = b.client.GetBalance(ctx)
	require.NoError(t, err)
	require.InDelta(t, 0.499, bal, 1e-12)
	require.InDelta(t, 0.001, b.fake.Stats().Charged, 1e-12)
}

func TestWrongKey(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{APIKeys: []string{"the-right-key"}}, anysolver.Config{})
	ctx := ctxT(t)
	id := seedID(t, "ERROR_KEY_DOES_NOT_EXIST")
	_, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	requireAPI(t, err, classify.CallCreateTask, "ERROR_KEY_DOES_NOT_EXIST", id)
	_, err = b.client.GetBalance(ctx)
	requireAPI(t, err, classify.CallGetBalance, "ERROR_KEY_DOES_NOT_EXIST", id)
	tid, err := anysolver.ParseTaskID(json.RawMessage(`"abc"`))
	require.NoError(t, err)
	_, err = b.client.GetTaskResult(ctx, tid)
	requireAPI(t, err, classify.CallGetTaskResult, "ERROR_KEY_DOES_NOT_EXIST", id)

	require.NotContains(t, fmt.Sprintf("%v %+v %#v %s", b.client, b.client, b.client, b.client), testKey)
	cfg := anysolver.Config{APIKey: testKey}
	require.NotContains(t, fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg), testKey)
}

func TestKeyEchoIsRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		code int
	}{
		{"description", `{"errorId":1,"errorCode":"ERROR_KEY_DOES_NOT_EXIST","errorDescription":"no key ` + testKey + `"}`, 200},
		{"code", `{"errorId":1,"errorCode":"` + testKey + `"}`, 200},
		{"status", `{"errorId":0,"status":"` + testKey + `"}`, 200},
		{"http error", `{"errorId":1,"errorCode":"X","errorDescription":"` + testKey + `"}`, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tt.code)
				_, _ = w.Write([]byte(tt.body))
			})
			tid, _ := anysolver.ParseTaskID(json.RawMessage(`7`))
			_, err := c.GetTaskResult(ctxT(t), tid)
			requireNoKey(t, err)
			require.Contains(t, err.Error(), "[redacted]")
		})
	}
}

func TestHTTPErrorWithJSONBody(t *testing.T) {
	t.Parallel()
	c := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte(`{"errorId":2,"errorCode":"INTERNAL_ERROR","errorDescription":"boom"}`))
	})
	_, err := c.GetBalance(ctxT(t))
	ae := requireAPI(t, err, classify.CallGetBalance, "INTERNAL_ERROR", 2)
	require.Equal(t, http.StatusInternalServerError, ae.HTTPStatus)
	require.Contains(t, err.Error(), "HTTP 500")

	// A wrong base path reaches the fake's 404, a JSON error.
	b := setup(t, anysolvertest.Options{}, anysolver.Config{})
	wrong, err := anysolver.New(anysolver.Config{BaseURL: b.ts.URL + "/v2/nope/x", APIKey: testKey})
	require.NoError(t, err)
	_, err = wrong.GetBalance(ctxT(t))
	require.NoError(t, err, "the fake serves any prefix")
}

func TestRedirectIsNotFollowed(t *testing.T) {
	t.Parallel()
	c := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "http://elsewhere.invalid/createTask", http.StatusTemporaryRedirect)
	})
	_, err := c.GetBalance(ctxT(t))
	requireTransport(t, err, classify.CallGetBalance, classify.FailureHTTPStatus, http.StatusTemporaryRedirect)
}

func TestRequestShape(t *testing.T) {
	t.Parallel()
	type seen struct {
		method, path, contentType, userAgent string
		body                                 map[string]json.RawMessage
	}
	got := make(chan seen, 3)
	c := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]json.RawMessage
		_ = json.NewDecoder(r.Body).Decode(&body)
		got <- seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"), body}
		_, _ = w.Write([]byte(`{"errorId":0,"taskId":42,"status":"processing","balance":"1.5"}`))
	})
	ctx := ctxT(t)
	res, err := c.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	require.NoError(t, err)
	s := <-got
	require.Equal(t, seen{http.MethodPost, "/createTask", "application/json", "solvequeue", s.body}, s)
	require.JSONEq(t, `"`+testKey+`"`, string(s.body["clientKey"]))
	require.NotContains(t, s.body, "provider")
	require.NotContains(t, s.body, "settings")

	_, err = c.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask, Provider: "CapSolver", Settings: map[string]any{"a": 1}})
	require.NoError(t, err)
	s = <-got
	require.JSONEq(t, `"CapSolver"`, string(s.body["provider"]))
	require.JSONEq(t, `{"a":1}`, string(s.body["settings"]))

	_, err = c.GetTaskResult(ctx, res.TaskID)
	require.NoError(t, err)
	s = <-got
	require.Equal(t, "/getTaskResult", s.path)
	require.Equal(t, "42", string(s.body["taskId"]), "a numeric id goes back as a number")
}

func TestCallerContext(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{CreateHTTP: anysolvertest.FaultHang}
	}}, anysolver.Config{Timeout: time.Minute})

	// The fake never answers: without the cancel the call would end a minute on, at the
	// Timeout, with DeadlineExceeded. Canceled says the cancel ended it.
	ctx, cancel := context.WithCancel(ctxT(t))
	time.AfterFunc(50*time.Millisecond, cancel)
	_, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	require.ErrorIs(t, err, context.Canceled)
	require.False(t, isTransport(err), "shutdown must not look like an outage: %v", err)
	_, ok := anysolver.AsClassifyError(err)
	require.False(t, ok)

	// A caller's own deadline is the caller's too, not a provider timeout.
	ctx, cancel = context.WithTimeout(ctxT(t), 100*time.Millisecond)
	defer cancel()
	_, err = b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.False(t, isTransport(err))

	// Canceled before the call: no request at all.
	calls := b.fake.Calls("getBalance")
	_, err = b.client.GetBalance(ctx)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Equal(t, calls, b.fake.Calls("getBalance"))

	// A cause given to the cancel shows in the error.
	ctx, cancelCause := context.WithCancelCause(ctxT(t))
	cancelCause(errors.New("worker shutting down"))
	_, err = b.client.GetBalance(ctx)
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "worker shutting down")
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	c, err := anysolver.New(anysolver.Config{BaseURL: "http://" + addr, APIKey: testKey, Timeout: 2 * time.Second})
	require.NoError(t, err)
	_, err = c.GetBalance(ctxT(t))
	requireTransport(t, err, classify.CallGetBalance, classify.FailureConnection, 0)
}

func TestGetBalance(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{Balance: 12.34}, anysolver.Config{})
	bal, err := b.client.GetBalance(ctxT(t))
	require.NoError(t, err)
	require.InDelta(t, 12.34, bal, 1e-12)
	require.Equal(t, 1, b.fake.Calls("getBalance"))
}

func TestRefusedBeforeCalling(t *testing.T) {
	t.Parallel()
	b := setup(t, anysolvertest.Options{}, anysolver.Config{})
	ctx := ctxT(t)
	_, err := b.client.CreateTask(ctx, anysolver.CreateTaskRequest{})
	require.ErrorIs(t, err, anysolver.ErrEmptyTask)
	_, err = b.client.GetTaskResult(ctx, anysolver.TaskID{})
	require.ErrorIs(t, err, anysolver.ErrZeroTaskID)
	_, err = b.client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: map[string]any{"type": "X", "bad": make(chan int)}})
	requireNoKey(t, err)
	_, ok := anysolver.AsClassifyError(err)
	require.False(t, ok)
	require.Zero(t, b.fake.Calls("createTask")+b.fake.Calls("getTaskResult"))
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     anysolver.Config
		wantErr string
	}{
		{"defaults", anysolver.Config{APIKey: "k"}, ""},
		{"no key", anysolver.Config{}, "Config.APIKey"},
		{"key of spaces", anysolver.Config{APIKey: "   "}, "Config.APIKey is only white space"},
		{"key of a tab and a newline", anysolver.Config{APIKey: "\t\n"}, "Config.APIKey is only white space"},
		{"key with a newline", anysolver.Config{APIKey: testKey + "\n"}, "Config.APIKey starts or ends with white space"},
		{"key after a space", anysolver.Config{APIKey: " " + testKey}, "Config.APIKey starts or ends with white space"},
		{"ftp", anysolver.Config{APIKey: "k", BaseURL: "ftp://x"}, "Config.BaseURL"},
		{"no host", anysolver.Config{APIKey: "k", BaseURL: "http://"}, "Config.BaseURL"},
		{"not a url", anysolver.Config{APIKey: "k", BaseURL: "::"}, "Config.BaseURL"},
		{"query", anysolver.Config{APIKey: "k", BaseURL: "http://x/?a=1"}, "Config.BaseURL"},
		{"negative timeout", anysolver.Config{APIKey: "k", Timeout: -1}, "Config.Timeout"},
		{"negative body", anysolver.Config{APIKey: "k", MaxBodyBytes: -1}, "Config.MaxBodyBytes"},
		{"negative conns", anysolver.Config{APIKey: "k", MaxConnsPerHost: -1}, "Config.MaxConnsPerHost"},
		{"key in url", anysolver.Config{APIKey: testKey, BaseURL: "gopher://" + testKey}, "Config.BaseURL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := anysolver.New(tt.cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Equal(t, anysolver.DefaultBaseURL, c.BaseURL())
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
			requireNoKey(t, err)
		})
	}
	c, err := anysolver.New(anysolver.Config{APIKey: "k", BaseURL: "https://user:pw@example.com/api/"})
	require.NoError(t, err)
	require.Equal(t, "https://user:xxxxx@example.com/api", c.BaseURL())

	// A password in a base URL that is refused, parseable or not, is not echoed (ANYSOLVER_URL).
	for _, raw := range []string{"ftp://u:S3CRETpw@h", "http://u:ab/cdS3CRETpw@h:1", "http://u:S3CRETpw@h/?q=1", "http://u:S3CRETpw@h:port"} {
		_, err := anysolver.New(anysolver.Config{APIKey: "k", BaseURL: raw})
		require.ErrorContains(t, err, "Config.BaseURL", raw)
		require.NotContains(t, err.Error(), "S3CRETpw", raw)
		require.NotContains(t, err.Error(), "ab/cd", raw)
	}
}

// TestNoGoroutineLeak runs the hostile cases and checks every goroutine they started ends.
// It is not parallel: parallel tests wait while it runs, so the count is its own.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		fake, ts := anysolvertest.NewServer(anysolvertest.Options{})
		defer ts.Close()
		c, err := anysolver.New(anysolver.Config{BaseURL: ts.URL, APIKey: testKey, Timeout: 200 * time.Millisecond, MaxBodyBytes: 32 << 10})
		require.NoError(t, err)
		defer c.CloseIdleConnections()
		ctx := ctxT(t)
		faults := []anysolvertest.Fault{anysolvertest.FaultHang, anysolvertest.FaultEndless, anysolvertest.FaultHuge,
			anysolvertest.FaultReset, anysolvertest.FaultGarbage, anysolvertest.FaultHTML502, anysolvertest.FaultTruncated, anysolvertest.FaultNone}
		for _, f := range faults {
			fake.SetScript(func(anysolvertest.Task) anysolvertest.Behavior {
				return anysolvertest.Behavior{CreateHTTP: f, PollHTTP: f}
			})
			for range 3 {
				_, _ = c.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
			}
		}
		canceled, cancel := context.WithCancel(ctx)
		fake.SetScript(func(anysolvertest.Task) anysolvertest.Behavior {
			return anysolvertest.Behavior{CreateHTTP: anysolvertest.FaultHang}
		})
		time.AfterFunc(20*time.Millisecond, cancel)
		_, _ = c.CreateTask(canceled, anysolver.CreateTaskRequest{Task: tokenTask})
	}()
	deadline := time.Now().Add(time.Minute) // a hang guard: the goroutines end at once, or leak
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}
