package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/worker"
)

// The secrets the queued jobs carry; none may leave the HTTP side.
const (
	proxyPassword = "hunter2pw"
	proxyURLPass  = "s3cretpw"
	otherTaskPass = "0therTaskPw"
)

type testBundle struct {
	rc      *redis.Client
	reg     *prometheus.Registry
	metrics *worker.Metrics
	taskIDs []string
}

// setup starts a Redis of the test's own and queues a solve job with a proxyPassword, one with
// a password in its proxy URL, and a task of another type, all pending in queue "default".
func setup(t *testing.T) *testBundle {
	t.Helper()
	srv := enqueuetest.Redis(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	t.Cleanup(func() { _ = rc.Close() })

	client := asynq.NewClientFromRedisClient(rc)
	submitted := time.Now().UTC().Format(time.RFC3339Nano)
	payloads := []string{
		`{"v":1,"task":{"type":"RecaptchaV2Task","websiteURL":"https://example.com/login","websiteKey":"6Le-site",` +
			`"proxyType":"http","proxyAddress":"1.2.3.4","proxyPort":8080,"proxyLogin":"user","proxyPassword":"` +
			proxyPassword + `"},"submittedAt":"` + submitted + `"}`,
		`{"v":1,"task":{"type":"HCaptchaTask","websiteURL":"https://example.com/","websiteKey":"hc-site",` +
			`"proxy":"http://user:` + proxyURLPass + `@1.2.3.4:8080"},"submittedAt":"` + submitted + `"}`,
	}
	b := &testBundle{rc: rc, reg: prometheus.NewRegistry()}
	for _, p := range payloads {
		info, err := client.Enqueue(asynq.NewTask(jobwire.TaskType, []byte(p)), asynq.Queue("default"))
		require.NoError(t, err)
		b.taskIDs = append(b.taskIDs, info.ID)
	}
	_, err := client.Enqueue(asynq.NewTask("email:send", []byte(`{"password":"`+otherTaskPass+`"}`)))
	require.NoError(t, err)

	b.metrics = worker.NewMetrics(b.reg)
	b.metrics.JobEnded(worker.JobEnd{Queue: "default", TaskType: "RecaptchaV2Task", State: enqueue.StateSolved,
		Attempts: 1, CreateTasks: 1, Polls: 3, SolveTime: 9 * time.Second, EndToEnd: 10 * time.Second})
	return b
}

// serve serves cfg's handler over real HTTP on 127.0.0.1.
func serve(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	h, err := NewHandler(cfg)
	require.NoError(t, err)
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

// get fetches url (with basic auth when user is set) and returns the status and body.
func get(t *testing.T, url, user, pass string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

func requireNoSecret(t *testing.T, body string) {
	t.Helper()
	for _, s := range []string{proxyPassword, proxyURLPass, otherTaskPass} {
		require.NotContains(t, body, s)
	}
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.1:0", true},
		{"127.1.2.3:8080", true},
		{"[::1]:8080", true},
		{"localhost:8080", true},
		{"LOCALHOST:8080", true},
		{"localhost", true},
		{":8080", false},
		{":0", false},
		{"0.0.0.0:8080", false},
		{"[::]:8080", false},
		{"10.0.0.5:8080", false},
		{"192.168.1.1:80", false},
		{"example.com:8080", false},
		{"localhost.example.com:8080", false},
		{"", false},
	} {
		require.Equal(t, tt.want, IsLoopback(tt.addr), "IsLoopback(%q)", tt.addr)
	}
}

func TestNewHandlerCredentials(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	t.Cleanup(func() { _ = rc.Close() })

	for _, addr := range []string{":0", "0.0.0.0:0", "10.1.2.3:8080", "example.com:80"} {
		_, err := NewHandler(Config{Addr: addr, Redis: rc})
		require.ErrorIs(t, err, ErrCredentialsRequired, addr)
		require.Contains(t, err.Error(), "SOLVEQUEUE_HTTP_USER")
		require.Contains(t, err.Error(), "SOLVEQUEUE_HTTP_PASSWORD")

		_, _, err = ListenAndServe(t.Context(), Config{Addr: addr, Redis: rc})
		require.ErrorIs(t, err, ErrCredentialsRequired, addr)

		_, err = NewHandler(Config{Addr: addr, Redis: rc, User: "ops", Password: "pw"})
		require.NoError(t, err, addr)
	}
	_, err := NewHandler(Config{Addr: "127.0.0.1:0", Redis: rc})
	require.NoError(t, err)
	_, err = NewHandler(Config{Addr: "127.0.0.1:0", Redis: rc, User: "ops"})
	require.ErrorContains(t, err, "both")
	_, err = NewHandler(Config{Addr: "127.0.0.1:0"})
	require.ErrorContains(t, err, "Redis")
}

func TestMonitoringRedactsPayloads(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := serve(t, Config{Addr: "127.0.0.1:0", Redis: b.rc, Registry: b.reg})

	status, _, body := get(t, s.URL+"/monitoring/api/queues", "", "")
	require.Equal(t, http.StatusOK, status, body)
	var queues struct {
		Queues []struct {
			Queue   string `json:"queue"`
			Pending int    `json:"pending"`
		} `json:"queues"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &queues))
	require.Len(t, queues.Queues, 1)
	require.Equal(t, "default", queues.Queues[0].Queue)
	require.Equal(t, 3, queues.Queues[0].Pending)

	status, _, body = get(t, s.URL+"/monitoring/api/queues/default/pending_tasks", "", "")
	require.Equal(t, http.StatusOK, status, body)
	requireNoSecret(t, body)
	require.Contains(t, body, redact.Marker)
	require.Contains(t, body, "1.2.3.4")    // the rest of the payload is shown
	require.Contains(t, body, "email:send") // the other task is listed, its payload hidden
	var pending struct {
		Tasks []struct {
			ID      string `json:"id"`
			Type    string `json:"type"`
			Payload string `json:"payload"`
		} `json:"tasks"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &pending))
	require.Len(t, pending.Tasks, 3)
	for _, task := range pending.Tasks {
		if task.Type == jobwire.TaskType {
			require.Contains(t, task.Payload, `"proxy`)
			require.Contains(t, task.Payload, redact.Marker)
			require.True(t, json.Valid([]byte(task.Payload)), task.Payload)
		} else {
			require.Contains(t, task.Payload, "hidden")
		}
	}

	for _, id := range b.taskIDs {
		status, _, body = get(t, s.URL+"/monitoring/api/queues/default/tasks/"+id, "", "")
		require.Equal(t, http.StatusOK, status, body)
		requireNoSecret(t, body)
		require.Contains(t, body, redact.Marker)
	}

	// The UI itself, and / leading to it.
	status, _, body = get(t, s.URL+"/monitoring/", "", "")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, "<html")
	status, header, _ := get(t, s.URL+"/", "", "")
	require.Equal(t, http.StatusFound, status)
	require.Equal(t, "/monitoring/", header.Get("Location"))
	status, _, _ = get(t, s.URL+"/nothing-here", "", "")
	require.Equal(t, http.StatusNotFound, status)
}

func TestMonitoringFormatters(t *testing.T) {
	t.Parallel()
	got := formatResult(jobwire.TaskType, []byte(`{"state":"failed","error":{"errorDescription":"proxy http://u:`+
		proxyURLPass+`@h:1 refused"},"solution":{"token":"03AF-token"}}`))
	require.NotContains(t, got, proxyURLPass)
	require.Contains(t, got, "03AF-token") // a solution is the product, not a secret
	require.Empty(t, formatResult(jobwire.TaskType, nil))
	require.Equal(t, `"(not JSON; hidden)"`, formatPayload(jobwire.TaskType, []byte("proxyPassword="+proxyPassword)))
	require.NotContains(t, formatPayload("other", []byte(otherTaskPass)), otherTaskPass)
}

func TestMonitoringMetricsEndpoint(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := serve(t, Config{Addr: "127.0.0.1:0", Redis: b.rc, Registry: b.reg})

	status, _, body := get(t, s.URL+"/metrics", "", "")
	require.Equal(t, http.StatusOK, status, body)
	requireNoSecret(t, body)
	require.Contains(t, body, `asynq_queue_size{queue="default"} 3`)
	require.Contains(t, body, `asynq_tasks_enqueued_total{queue="default",state="pending"} 3`)
	require.Contains(t, body, `solvequeue_jobs_ended_total{code="",queue="default",state="solved"} 1`)
	require.Contains(t, body, "solvequeue_solve_seconds_bucket")
	require.Contains(t, body, "solvequeue_dead_letters 0")
	require.Contains(t, body, "solvequeue_breaker_open 0")

	// Redis is the truth for the breaker shared by all workers; this worker's own gauge shows
	// only when Redis cannot be read.
	b.metrics.BreakerChanged(true, "ERROR_ZERO_BALANCE")
	_, _, body = get(t, s.URL+"/metrics", "", "")
	require.Contains(t, body, "solvequeue_breaker_open 0")
	require.Equal(t, 1, strings.Count(body, "# TYPE solvequeue_breaker_open gauge"))

	require.NoError(t, b.rc.Set(t.Context(), keys.Breaker, `{"code":"ERROR_ZERO_BALANCE"}`, 0).Err())
	require.NoError(t, queuereg.Register(t.Context(), b.rc, "default"))
	require.NoError(t, b.rc.HSet(t.Context(), keys.DeadLetters("default"), "default/x", "{}").Err())
	_, _, body = get(t, s.URL+"/metrics", "", "")
	require.Contains(t, body, "solvequeue_breaker_open 1")
	require.Contains(t, body, "solvequeue_dead_letters 1")

	// The caller's registry is left as given: a second handler on it builds fine.
	_, err := NewHandler(Config{Addr: "127.0.0.1:0", Redis: b.rc, Registry: b.reg})
	require.NoError(t, err)
}

func TestMonitoringBasicAuth(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: enqueuetest.Redis(t).Addr})
	t.Cleanup(func() { _ = rc.Close() })

	for _, addr := range []string{"0.0.0.0:0", "127.0.0.1:0"} { // credentials, once set, apply on loopback too
		// Wrong logins past the free ones have their answers held: this clock skips the holds.
		clock := newFakeClock()
		s := serve(t, Config{Addr: addr, Redis: rc, User: "ops", Password: "correct horse", Now: clock.now, Sleep: clock.skip})
		for _, path := range []string{"/metrics", "/readyz", "/monitoring/", "/monitoring/api/queues", "/"} {
			status, header, _ := get(t, s.URL+path, "", "")
			require.Equal(t, http.StatusUnauthorized, status, path)
			require.Contains(t, header.Get("WWW-Authenticate"), "Basic")
			status, _, _ = get(t, s.URL+path, "ops", "wrong")
			require.Equal(t, http.StatusUnauthorized, status, path)
			status, _, _ = get(t, s.URL+path, "ops2", "correct horse")
			require.Equal(t, http.StatusUnauthorized, status, path)
			// The right credentials get in, however many wrong ones came before (see TestMonitoringLoginSlowdown).
			status, _, body := get(t, s.URL+path, "ops", "correct horse")
			require.Contains(t, []int{http.StatusOK, http.StatusFound}, status, "%s: %s", path, body)
		}
		for _, path := range []string{"/metrics", "/readyz", "/monitoring/", "/monitoring/api/queues"} {
			status, _, body := get(t, s.URL+path, "ops", "correct horse")
			require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
		}
		status, _, body := get(t, s.URL+"/healthz", "", "")
		require.Equal(t, http.StatusOK, status)
		require.Equal(t, "ok\n", body)
	}
}

func TestMonitoringReadyz(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: enqueuetest.Redis(t).Addr})
	t.Cleanup(func() { _ = rc.Close() })

	s := serve(t, Config{Addr: "127.0.0.1:0", Redis: rc})
	status, _, body := get(t, s.URL+"/readyz", "", "")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"ready":true,"breaker":{"open":false}}`, body)

	// Warnings (a gateway's keys whose queue no worker serves) leave it ready, secrets cut.
	s = serve(t, Config{Addr: "127.0.0.1:0", Redis: rc, Password: "httppw", User: "ops",
		Warnings: func(context.Context) []string {
			return []string{"key idle: no worker serves its queue nobody", "seen at redis://u:urlpw@h:1 with httppw"}
		}})
	status, _, body = get(t, s.URL+"/readyz", "ops", "httppw")
	require.Equal(t, http.StatusOK, status, body)
	require.JSONEq(t, `{"ready":true,"breaker":{"open":false},"warnings":["key idle: no worker serves its queue nobody",`+
		`"seen at redis://u:[redacted]@h:1 with [redacted]"]}`, body)

	// The configured Redis password is cut wherever it shows, a URL's password too.
	withPassword := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", Password: "redispw"})
	t.Cleanup(func() { _ = withPassword.Close() })
	s = serve(t, Config{Addr: "127.0.0.1:0", Redis: withPassword, Ready: func(context.Context) (any, error) {
		return nil, errors.New("redis: dial redis://admin:urlpw@10.0.0.9:6379 failed; AUTH redispw")
	}})
	status, _, body = get(t, s.URL+"/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, status)
	require.NotContains(t, body, "redispw")
	require.NotContains(t, body, "urlpw")
	var r struct {
		Ready bool   `json:"ready"`
		Error string `json:"error"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &r))
	require.False(t, r.Ready)
	require.Contains(t, r.Error, "10.0.0.9:6379")

	// The default check against a Redis that is gone, whose password must not show.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", Password: "redispw", MaxRetries: -1})
	t.Cleanup(func() { _ = down.Close() })
	s = serve(t, Config{Addr: "127.0.0.1:0", Redis: down})
	status, _, body = get(t, s.URL+"/readyz", "", "")
	require.Equal(t, http.StatusServiceUnavailable, status, body)
	require.NotContains(t, body, "redispw")
	status, _, _ = get(t, s.URL+"/healthz", "", "")
	require.Equal(t, http.StatusOK, status)

	require.Equal(t, "dial redis://admin:[redacted]@h:1 and rediss://:[redacted]@h2 x",
		redactError("dial redis://admin:pw1@h:1 and rediss://:pw2@h2 x"))
	require.Equal(t, "dial redis://admin:[redacted]@h:1", redactError("dial redis://admin:p@ss@h:1"),
		"a password may hold '@': all of it goes, as redact.Text cuts it")
	require.Equal(t, "auth [redacted] refused", redactError("auth pw refused", "pw"), "the operator's own short passwords too")
}

// post sends an unsafe request (asynqmon's pause) with basic auth when user is set.
func post(t *testing.T, s *httptest.Server, path, user, pass string, header map[string]string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+path, nil)
	require.NoError(t, err)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
}

const pausePath = "/monitoring/api/queues/default:pause"

func paused(t *testing.T, rc *redis.Client) bool {
	t.Helper()
	n, err := rc.Exists(t.Context(), "asynq:{default}:paused").Result()
	require.NoError(t, err)
	return n == 1
}

// TestMonitoringChangesNeedCredentials: without credentials the UI is read-only, on loopback
// too; with them it changes things on loopback, and off loopback only when asked.
func TestMonitoringChangesNeedCredentials(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const user, pass = "ops", "correct horse"

	open := serve(t, Config{Addr: "127.0.0.1:0", Redis: b.rc})
	require.Equal(t, http.StatusForbidden, post(t, open, pausePath, "", "", nil))
	require.Equal(t, http.StatusForbidden, post(t, open, pausePath, "", "", map[string]string{"Sec-Fetch-Site": "same-origin"}))
	require.Equal(t, http.StatusOK, func() int { c, _, _ := get(t, open.URL+"/monitoring/api/queues", "", ""); return c }(), "reads stay open")
	_, _, page := get(t, open.URL+"/monitoring/", "", "")
	require.Contains(t, page, `FLAG_READ_ONLY="true"`, "asynqmon hides its buttons")

	ro := serve(t, Config{Addr: "127.0.0.1:0", Redis: b.rc, User: user, Password: pass, ReadOnly: true})
	require.Equal(t, http.StatusForbidden, post(t, ro, pausePath, user, pass, nil))

	remote := serve(t, Config{Addr: "10.1.2.3:8080", Redis: b.rc, User: user, Password: pass})
	require.Equal(t, http.StatusForbidden, post(t, remote, pausePath, user, pass, nil), "read-only by default off loopback")
	_, _, page = get(t, remote.URL+"/monitoring/", user, pass)
	require.Contains(t, page, `FLAG_READ_ONLY="true"`)
	require.False(t, paused(t, b.rc))

	rw := serve(t, Config{Addr: "127.0.0.1:0", Redis: b.rc, User: user, Password: pass})
	// A web page elsewhere cannot press asynqmon's buttons through the operator's browser.
	require.Equal(t, http.StatusForbidden, post(t, rw, pausePath, user, pass, map[string]string{"Sec-Fetch-Site": "cross-site"}))
	require.Equal(t, http.StatusForbidden, post(t, rw, pausePath, user, pass, map[string]string{"Origin": "https://evil.example"}))
	require.False(t, paused(t, b.rc))
	require.Equal(t, http.StatusUnauthorized, post(t, rw, pausePath, "", "", nil))
	require.Equal(t, http.StatusNoContent, post(t, rw, pausePath, user, pass, map[string]string{"Sec-Fetch-Site": "same-origin"}))
	require.True(t, paused(t, b.rc))

	asked := serve(t, Config{Addr: "10.1.2.3:8080", Redis: b.rc, User: user, Password: pass, AllowChanges: true})
	require.Equal(t, http.StatusNoContent, post(t, asked, "/monitoring/api/queues/default:resume", user, pass, nil))
	require.False(t, paused(t, b.rc))

	// DNS rebinding: a foreign Host reaching the open loopback side is refused.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, open.URL+"/monitoring/api/queues", nil)
	require.NoError(t, err)
	req.Host = "rebind.evil.example:" + open.URL[strings.LastIndex(open.URL, ":")+1:]
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func TestListenAndServe(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rc.Close() })

	ctx, cancel := context.WithCancel(t.Context())
	addr, stop, err := ListenAndServe(ctx, Config{Addr: "127.0.0.1:0", Redis: rc})
	require.NoError(t, err)
	require.NotEqual(t, "127.0.0.1:0", addr)
	status, _, _ := get(t, "http://"+addr+"/healthz", "", "")
	require.Equal(t, http.StatusOK, status)

	_, _, err = ListenAndServe(t.Context(), Config{Addr: addr, Redis: rc})
	require.ErrorContains(t, err, "listen on "+addr)

	require.NoError(t, stop(t.Context()))
	_, err = http.Get(fmt.Sprintf("http://%s/healthz", addr))
	require.Error(t, err)
	require.NoError(t, stop(t.Context())) // idempotent
	cancel()

	// Ending ctx stops the server too.
	ctx, cancel = context.WithCancel(t.Context())
	addr, _, err = ListenAndServe(ctx, Config{Addr: "127.0.0.1:0", Redis: rc})
	require.NoError(t, err)
	cancel()
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err != nil
	}, time.Minute, 20*time.Millisecond)
}

func TestTaskAPIKind(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		kind string
		ok   bool
	}{
		{"/monitoring/api/queues/default/pending_tasks", "pending", true},
		{"/monitoring/api/queues/default/completed_tasks", "completed", true},
		{"/monitoring/api/queues/default/archived_tasks", "archived", true},
		{"/monitoring/api/queues/default/groups/g1/aggregating_tasks", "aggregating", true},
		{"/monitoring/api/queues/default/tasks/order-42", "", true},
		{"/monitoring/api/queues/default/archived_tasks:run_all", "", false},
		{"/monitoring/api/queues/default", "", false},
		{"/monitoring/api/queues", "", false},
		{"/monitoring/queues/default", "", false},
	} {
		kind, ok := taskAPIKind(tc.path)
		require.Equal(t, tc.ok, ok, tc.path)
		require.Equal(t, tc.kind, kind, tc.path)
	}
}
