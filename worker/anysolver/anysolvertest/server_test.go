package anysolvertest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

func TestProtocol(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       anysolvertest.Options
		verb       string
		method     string
		body       string
		wantStatus int
		wantCode   string
		wantID     int
	}{
		{"unknown method", anysolvertest.Options{}, "POST", "solve", `{}`, 404, "METHOD_NOT_FOUND", 1},
		{"GET", anysolvertest.Options{}, "GET", "createTask", ``, 405, "METHOD_NOT_ALLOWED", 1},
		{"bad JSON", anysolvertest.Options{}, "POST", "createTask", `{"clientKey":`, 200, "INVALID_TASK_DATA", 1},
		{"no key", anysolvertest.Options{}, "POST", "createTask", `{"task":` + token + `}`, 200, "ERROR_KEY_DOES_NOT_EXIST", 1},
		{"unknown key", anysolvertest.Options{APIKeys: []string{"other"}}, "POST", "getBalance", `{"clientKey":"` + key + `"}`, 200, "ERROR_KEY_DOES_NOT_EXIST", 1},
		{"no task", anysolvertest.Options{}, "POST", "createTask", `{"clientKey":"k"}`, 200, "INVALID_TASK_DATA", 1},
		{"no type", anysolvertest.Options{}, "POST", "createTask", createBody(`{"websiteKey":"x"}`), 200, "INVALID_TASK_DATA", 1},
		{"zero balance", anysolvertest.Options{ZeroBalance: true}, "POST", "createTask", createBody(token), 200, "ERROR_ZERO_BALANCE", 1},
		{"negative balance", anysolvertest.Options{Balance: -1}, "POST", "createTask", createBody(token), 200, "ERROR_ZERO_BALANCE", 1},
		{"unknown task", anysolvertest.Options{}, "POST", "getTaskResult", pollBody("nope"), 200, "TASK_NOT_FOUND", 1},
		{"no task id", anysolvertest.Options{}, "POST", "getTaskResult", `{"clientKey":"k"}`, 200, "INVALID_TASK_DATA", 1},
		{"create error errorId 2", anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
			return anysolvertest.Behavior{CreateError: "INTERNAL_ERROR"}
		}}, "POST", "createTask", createBody(token), 200, "INTERNAL_ERROR", 2},
		{"unknown code", anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
			return anysolvertest.Behavior{CreateError: "NEW_THING"}
		}}, "POST", "createTask", createBody(token), 200, "NEW_THING", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fake, base := start(t, tt.opts)
			req, err := http.NewRequest(tt.verb, base+"/"+tt.method, bytes.NewBufferString(tt.body))
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			require.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var m map[string]any
			dec := json.NewDecoder(resp.Body)
			dec.UseNumber()
			require.NoError(t, dec.Decode(&m))
			requireCode(t, m, tt.wantCode, tt.wantID)
			require.Zero(t, fake.Stats().Created, "errors are not charged")
		})
	}
}

func TestIDsAndCosts(t *testing.T) {
	t.Parallel()
	fake, base := start(t, anysolvertest.Options{Cost: 0.0025, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{}
	}})
	var costKinds []string
	for i := range 4 {
		id := create(t, base, token)
		_, isNum := id.(json.Number)
		require.Equal(t, i%2 == 0, isNum, "odd tasks get numeric ids: %v", id)
		if isNum {
			_, m := post(t, base, "getTaskResult", pollBody(fmt.Sprint(id))) // a number sent back as a string
			requireCode(t, m, "TASK_NOT_FOUND", 1)
		}
		_, m := post(t, base, "getTaskResult", pollBody(id))
		require.Equal(t, "ready", m["status"], "answer %v", m)
		require.Equal(t, json.Number("0"), m["errorId"])
		require.NotNil(t, m["solution"])
		switch c := m["cost"].(type) {
		case string:
			require.Equal(t, "0.0025", c)
			costKinds = append(costKinds, "string")
		case json.Number:
			require.Equal(t, json.Number("0.0025"), c)
			costKinds = append(costKinds, "number")
		}
		readyAt, ok := fake.ReadyAt(fmt.Sprint(id))
		require.True(t, ok)
		require.False(t, readyAt.IsZero())
	}
	require.Equal(t, []string{"number", "string", "string", "number"}, costKinds)
	_, ok := fake.ReadyAt("nope")
	require.False(t, ok)
}

func TestFailedAnswer(t *testing.T) {
	t.Parallel()
	_, base := start(t, anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{PollFailed: "CAPTCHA_UNSOLVABLE"}
	}})
	for i := range 2 {
		_, m := post(t, base, "getTaskResult", pollBody(create(t, base, token)))
		require.Equal(t, "failed", m["status"])
		requireCode(t, m, "CAPTCHA_UNSOLVABLE", map[int]int{0: 0, 1: 1}[i]) // numeric ids: errorId 0
	}
}

func TestCounts(t *testing.T) {
	t.Parallel()
	clock := epoch()
	fake, base := start(t, anysolvertest.Options{Now: clock.Now, Balance: 1})
	idA := create(t, base, `{"type":"TurnstileTaskProxyless","websiteKey":"A"}`)
	create(t, base, `{"type":"TurnstileTaskProxyless","websiteKey":"A"}`)
	img := `{"type":"ImageToTextTask","body":"aGk="}`
	_, m := post(t, base, "createTask", createBody(img))
	require.Equal(t, "ready", m["status"], "image tasks answer at once")
	for range 3 {
		post(t, base, "getTaskResult", pollBody(idA))
	}
	post(t, base, "getBalance", `{"clientKey":"k"}`)

	require.Equal(t, 3, fake.Calls("createTask"))
	require.Equal(t, 3, fake.Calls("getTaskResult"))
	require.Equal(t, 1, fake.Calls("getBalance"))
	require.Equal(t, 0, fake.Calls("nope"))
	require.Equal(t, 2, fake.Creates("A"))
	require.Equal(t, 3, fake.Polls("A"))
	require.Equal(t, 0, fake.Polls("B"))
	require.Equal(t, 1, fake.Creates(anysolvertest.TaskKey(map[string]any{"type": "ImageToTextTask", "body": "aGk="})))
	require.Equal(t, anysolvertest.Stats{CreateTask: 3, GetTaskResult: 3, GetBalance: 1, Creates: 3, Created: 3, Solved: 1,
		InFlight: 2, Tasks: 3, Charged: 0.003}, fake.Stats())
	require.InDelta(t, 0.997, fake.Balance(), 1e-12)

	readyAt, ok := fake.ReadyAt(fmt.Sprint(idA))
	require.True(t, ok)
	require.Equal(t, clock.Now().Add(anysolvertest.DefaultSolveTime), readyAt)
}

func TestOutage(t *testing.T) {
	t.Parallel()
	clock := epoch()
	fake, base := start(t, anysolvertest.Options{Now: clock.Now})
	fake.SetOutage(anysolvertest.FaultHTTP503, clock.Now().Add(30*time.Second))
	for _, method := range []string{"createTask", "getTaskResult", "getBalance", "anything"} {
		resp, err := http.Post(base+"/"+method, "application/json", bytes.NewBufferString(createBody(token)))
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, method)
	}
	clock.Advance(30 * time.Second)
	create(t, base, token)
	require.Equal(t, 2, fake.Calls("createTask"))
	require.Equal(t, 1, fake.Creates("6Le-k"), "outage answers are not creates")

	fake.SetOutage(anysolvertest.FaultReset, clock.Now().Add(time.Minute))
	_, err := http.Post(base+"/getBalance", "application/json", bytes.NewBufferString(`{}`))
	require.Error(t, err)
	fake.SetOutage(anysolvertest.FaultNone, time.Time{})
	create(t, base, token)
}

func TestPollLimit(t *testing.T) {
	t.Parallel()
	fake, base := start(t, anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{SolveTime: time.Hour}
	}})
	id := create(t, base, token)
	for i := range anysolvertest.MaxPolls {
		_, m := post(t, base, "getTaskResult", pollBody(id))
		require.Contains(t, []any{"idle", "processing"}, m["status"], "poll %d: %v", i+1, m)
	}
	for range 2 {
		_, m := post(t, base, "getTaskResult", pollBody(id))
		requireCode(t, m, "TASK_NOT_FOUND", 1)
	}
	st := fake.Stats()
	require.Zero(t, st.InFlight)
	require.Zero(t, st.Tasks)
}

func TestExpiry(t *testing.T) {
	t.Parallel()
	clock := epoch()
	fake, base := start(t, anysolvertest.Options{Now: clock.Now, ResultTTL: time.Minute})
	ids := []any{create(t, base, token), create(t, base, token)}
	clock.Advance(59 * time.Second)
	_, m := post(t, base, "getTaskResult", pollBody(ids[0]))
	require.Equal(t, "ready", m["status"])
	clock.Advance(time.Second)
	_, m = post(t, base, "getTaskResult", pollBody(ids[0]))
	requireCode(t, m, "TASK_NOT_FOUND", 1)
	require.Equal(t, 1, fake.Stats().Tasks, "the polled task is forgotten at once")

	clock.Advance(15 * time.Second) // a sweep runs at most every min(ResultTTL/4, 30s)
	create(t, base, token)          // and this call runs it: the other expired task goes
	st := fake.Stats()
	require.Equal(t, 1, st.Tasks)
	require.Equal(t, 1, st.InFlight)
	_, m = post(t, base, "getTaskResult", pollBody(ids[1]))
	requireCode(t, m, "TASK_NOT_FOUND", 1)
}

// TestManyInFlight holds 10,000 tasks in flight and checks they cost no goroutines.
// It is not parallel, so the goroutine count is its own.
func TestManyInFlight(t *testing.T) {
	fake := anysolvertest.New(anysolvertest.Options{Balance: 1e6, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{SolveTime: time.Hour}
	}})
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 1250 {
				body := createBody(fmt.Sprintf(`{"type":"TurnstileTaskProxyless","websiteKey":"k-%d-%d"}`, w, i))
				rec := httptest.NewRecorder()
				fake.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/createTask", bytes.NewBufferString(body)))
				if rec.Code != http.StatusOK {
					t.Errorf("status %d", rec.Code)
				}
			}
		})
	}
	wg.Wait()
	require.Equal(t, 10_000, fake.Stats().InFlight)
	// A little slack for the runtime and earlier tests' connections winding down; a goroutine
	// per task would show as 10,000.
	require.LessOrEqual(t, runtime.NumGoroutine(), before+10)
}

func TestSetters(t *testing.T) {
	t.Parallel()
	fake, base := start(t, anysolvertest.Options{})
	fake.SetAPIKeys("a", "b")
	_, m := post(t, base, "getBalance", `{"clientKey":"`+key+`"}`)
	requireCode(t, m, "ERROR_KEY_DOES_NOT_EXIST", 1)
	_, m = post(t, base, "getBalance", `{"clientKey":"b"}`)
	require.Equal(t, json.Number("100"), m["balance"])
	fake.SetAPIKeys()
	fake.SetBalance(0)
	_, m = post(t, base, "getBalance", `{"clientKey":"any"}`)
	require.Equal(t, json.Number("0"), m["balance"])

	fake.SetBalance(5)
	fake.SetScript(func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{CreateError: "DOMAIN_BANNED", CreateErrorDescription: "not here"}
	})
	_, m = post(t, base, "createTask", createBody(token))
	require.Equal(t, "not here", m["errorDescription"])
	fake.SetScript(nil)
	create(t, base, token)
}
