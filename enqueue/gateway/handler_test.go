package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

const (
	gammaKey = "gk-gamma-0b6f4d2a9c3e8e11"
	deltaKey = "gk-delta-77aa01c3d9e2b540"
)

// keysFile gives alpha and beta a queue each that the test's mini worker serves, gamma one
// nobody serves (its jobs stay pending), and delta a rate limit.
var keysFile = "keys:\n" +
	"  - {name: alpha, key: " + alphaKey + ", queue: alpha}\n" +
	"  - {name: beta, sha256: " + sha(betaKey) + ", queue: beta}\n" +
	"  - {name: gamma, key: " + gammaKey + ", queue: gamma}\n" +
	"  - {name: delta, key: " + deltaKey + ", queue: delta, rateLimit: 3}\n"

// testBundle is a real redis-server, an enqueue.Client, the gateway over real HTTP, and a
// mini worker: an asynq server that ends each job as its websiteKey says ("solve", "fail",
// "dead"), writing the record a real worker writes.
type testBundle struct {
	rc      redis.UniversalClient
	client  *enqueue.Client
	handler *gateway.Handler
	url     string
	reg     *prometheus.Registry
	metrics *gateway.Metrics
}

func setup(t *testing.T, keys *gateway.Keys) *testBundle {
	t.Helper()
	return setupAt(t, keys, nil)
}

// setupAt is setup with the clock of the client and the gateway (nil: time.Now).
func setupAt(t *testing.T, keys *gateway.Keys, now func() time.Time) *testBundle {
	t.Helper()
	srv := enqueuetest.Redis(t)
	rc, err := redisconn.Open(context.Background(), srv.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc, Shared: true, Now: now})
	require.NoError(t, err)
	b := &testBundle{rc: rc, client: client, reg: prometheus.NewRegistry()}
	b.metrics = gateway.NewMetrics(b.reg)
	b.handler, err = gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Keys: keys, Metrics: b.metrics,
		Logger: slog.New(slog.DiscardHandler), Now: now})
	require.NoError(t, err)
	b.url = startHTTP(t, b.handler)
	return b
}

// startHTTP serves h on a loopback port for the test and returns its URL.
func startHTTP(t *testing.T, h http.Handler) string {
	t.Helper()
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs.URL
}

func mustKeys(t testing.TB) *gateway.Keys {
	t.Helper()
	keys, err := gateway.ParseKeys("keys.yaml", []byte(keysFile))
	require.NoError(t, err)
	return keys
}

// startMiniWorker ends every job of the alpha and beta queues as its task's websiteKey says.
func (b *testBundle) startMiniWorker(t *testing.T) {
	t.Helper()
	srv := asynq.NewServerFromRedisClient(b.rc, asynq.Config{Queues: map[string]int{"alpha": 1, "beta": 1, "default": 1},
		Concurrency: 4, LogLevel: asynq.FatalLevel, TaskCheckInterval: 50 * time.Millisecond})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		p, err := jobwire.DecodePayload(task.Payload())
		if err != nil {
			return err
		}
		rec := jobwire.Record{Attempts: 1, CreateTasks: 1, FinishedAt: time.Now().UTC()}
		var result error
		switch p.Task["websiteKey"] {
		case "fail":
			rec.State = enqueue.StateFailed
			rec.Error = &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "DOMAIN_BANNED", ErrorDescription: "This domain is not allowed."}
		case "dead":
			rec.State = enqueue.StateDead
			rec.Error = &enqueue.ErrorInfo{ErrorID: 2, ErrorCode: "INTERNAL_ERROR", ErrorDescription: "retry budget spent"}
			result = fmt.Errorf("dead: %w", asynq.SkipRetry)
		default:
			rec.State, rec.Cost, rec.Attempts = enqueue.StateSolved, 0.002, 2
			rec.Solution = json.RawMessage(`{"gRecaptchaResponse":"03AG-` + fmt.Sprint(p.GatewayTaskID) + `"}`)
		}
		data, _ := json.Marshal(rec)
		if _, err := task.ResultWriter().Write(data); err != nil {
			return err
		}
		return result
	})))
	t.Cleanup(srv.Shutdown)
}

// call POSTs body (JSON-encoded unless it is a string or []byte) to /method and returns the
// decoded answer, checking what every answer must be: HTTP 200, JSON, nosniff.
func (b *testBundle) call(t *testing.T, method string, body any, header ...string) map[string]any {
	t.Helper()
	status, answer := b.raw(t, method, body, header...)
	require.Equal(t, http.StatusOK, status, "every protocol answer is HTTP 200: %v", answer)
	return answer
}

func (b *testBundle) raw(t *testing.T, method string, body any, header ...string) (int, map[string]any) {
	t.Helper()
	var data []byte
	switch v := body.(type) {
	case string:
		data = []byte(v)
	case []byte:
		data = v
	default:
		var err error
		data, err = json.Marshal(v)
		require.NoError(t, err)
	}
	req, err := http.NewRequest(http.MethodPost, b.url+"/"+method, bytes.NewReader(data))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	require.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var answer map[string]any
	require.NoError(t, dec.Decode(&answer), "answer is JSON: %s", raw)
	return resp.StatusCode, answer
}

// post is a plain request that any goroutine may make: it reports errors instead of failing.
func post(url, method string, body any, header ...string) (map[string]any, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequest(http.MethodPost, url+"/"+method, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	dec.UseNumber()
	var a map[string]any
	return a, dec.Decode(&a)
}

func recaptchaTask(websiteKey string) map[string]any {
	return map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": websiteKey}
}

func create(key string, task map[string]any) map[string]any {
	return map[string]any{"clientKey": key, "task": task, "softId": 54, "languagePool": "en", "nocache": true}
}

// taskID returns the answer's taskId, checking it is a positive JSON integer below 2^53.
func taskID(t *testing.T, answer map[string]any) int64 {
	t.Helper()
	require.Equal(t, json.Number("0"), answer["errorId"], "%v", answer)
	n, ok := answer["taskId"].(json.Number)
	require.True(t, ok, "taskId is a JSON number, not a string: %v", answer)
	id, err := n.Int64()
	require.NoError(t, err, "taskId is an integer")
	require.Positive(t, id)
	require.Less(t, id, int64(1)<<53)
	return id
}

// The anti-captcha dialect's codes that the createTask protocol answers for the gateway's own
// codes (gateway.CodeTable): client libraries such as capmonstercloud-client know these.
const (
	dialectNoSuchCaptchaID = "ERROR_NO_SUCH_CAPCHA_ID"         // TASK_NOT_FOUND
	dialectInvalidSitekey  = "ERROR_RECAPTCHA_INVALID_SITEKEY" // INVALID_SITEKEY
	dialectImageType       = "ERROR_IMAGE_TYPE_NOT_SUPPORTED"  // IMAGE_CORRUPTED
	dialectTooBig          = "ERROR_TOO_BIG_CAPTCHA_FILESIZE"  // IMAGE_TOO_LARGE
	dialectNoSlot          = "ERROR_NO_SLOT_AVAILABLE"         // RATE_LIMITED
)

func requireError(t *testing.T, answer map[string]any, errorID int, code string) {
	t.Helper()
	require.Equal(t, json.Number(fmt.Sprint(errorID)), answer["errorId"], "%v", answer)
	require.Equal(t, code, answer["errorCode"], "%v", answer)
	require.NotEmpty(t, answer["errorDescription"])
}

// waitResult polls getTaskResult until the status is not "processing".
func (b *testBundle) waitResult(t *testing.T, key string, id int64) map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		a := b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": key, "taskId": id})
		if a["status"] != gateway.StatusProcessing {
			return a
		}
		require.True(t, time.Now().Before(deadline), "task %d still processing", id)
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEveryMethod(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	b.startMiniWorker(t)

	// createTask → getTaskResult, to each end.
	solved := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("solve"))))
	a := b.waitResult(t, alphaKey, solved)
	require.Equal(t, json.Number("0"), a["errorId"])
	require.Equal(t, gateway.StatusReady, a["status"])
	require.Equal(t, map[string]any{"gRecaptchaResponse": fmt.Sprintf("03AG-%d", solved)}, a["solution"])
	require.Equal(t, "0.0020", a["cost"])
	require.Equal(t, json.Number("2"), a["solveCount"])
	created, _ := a["createTime"].(json.Number).Int64()
	ended, _ := a["endTime"].(json.Number).Int64()
	require.Positive(t, created)
	require.GreaterOrEqual(t, ended, created)

	failed := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("fail"))))
	a = b.waitResult(t, alphaKey, failed)
	requireError(t, a, 1, "ERROR_DOMAIN_NOT_ALLOWED")
	require.Contains(t, a["errorDescription"], "DOMAIN_BANNED", "AnySolver's own code is kept in the description")
	require.Equal(t, gateway.StatusFailed, a["status"])

	dead := taskID(t, b.call(t, gateway.MethodCreateTask, create(betaKey, recaptchaTask("dead"))))
	a = b.waitResult(t, betaKey, dead)
	requireError(t, a, 2, "INTERNAL_ERROR")
	require.Equal(t, gateway.StatusFailed, a["status"])

	// The job is in the key's queue, under the key's name, with the taskId; clientKey is nowhere.
	jobID, err := b.handler.JobID(context.Background(), "alpha", solved)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(jobID, gateway.JobIDPrefix))
	info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo("alpha", jobID)
	require.NoError(t, err)
	p, err := jobwire.DecodePayload(info.Payload)
	require.NoError(t, err)
	require.Equal(t, "alpha", p.KeyName)
	require.Equal(t, solved, p.GatewayTaskID)
	requireNoKeyInRedis(t, b.rc)

	// A job nobody serves reads "processing", never "idle".
	pending := taskID(t, b.call(t, gateway.MethodCreateTask, create(gammaKey, recaptchaTask("solve"))))
	a = b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": gammaKey, "taskId": pending})
	require.Equal(t, map[string]any{"errorId": json.Number("0"), "status": "processing"}, a)
	// Some clients send the taskId back as a string.
	a = b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": gammaKey, "taskId": fmt.Sprint(pending)})
	require.Equal(t, "processing", a["status"])

	// getBalance: what the workers published.
	requireError(t, b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": alphaKey}), 2, "INTERNAL_ERROR")
	require.NoError(t, balance.Write(context.Background(), b.rc, balance.Balance{Balance: 12.34, ReadAt: time.Now()}, 0))
	require.Equal(t, map[string]any{"errorId": json.Number("0"), "balance": json.Number("12.34")},
		b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": alphaKey}))

	// The report methods: success for the key's own task, counted by key and task type.
	for _, m := range []string{gateway.MethodReportIncorrectRecaptcha, gateway.MethodReportCorrectRecaptcha, gateway.MethodReportIncorrectImageCaptcha} {
		require.Equal(t, map[string]any{"errorId": json.Number("0"), "status": "success"},
			b.call(t, m, map[string]any{"clientKey": alphaKey, "taskId": solved}))
		requireError(t, b.call(t, m, map[string]any{"clientKey": betaKey, "taskId": solved}), 1, dialectNoSuchCaptchaID)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(reportsCounter(t, b, gateway.MethodReportIncorrectRecaptcha, "alpha", "RecaptchaV2TaskProxyless")))

	// Metrics: by method, key name and code; never the key.
	for _, c := range []struct {
		method, key, code string
		want              float64
	}{
		{gateway.MethodCreateTask, "alpha", "ok", 2},
		{gateway.MethodCreateTask, "beta", "ok", 1},
		{gateway.MethodCreateTask, "gamma", "ok", 1},
		{gateway.MethodGetBalance, "alpha", gateway.CodeInternalError, 1},
		{gateway.MethodGetBalance, "alpha", "ok", 1},
		{gateway.MethodReportCorrectRecaptcha, "beta", dialectNoSuchCaptchaID, 1},
	} {
		require.Equal(t, c.want, testutil.ToFloat64(requestsCounter(t, b, c.method, c.key, c.code)), "%+v", c)
	}
	require.Positive(t, testutil.CollectAndCount(b.reg, "solvequeue_gateway_request_seconds"))
	requireNoKeyInMetrics(t, b.reg)
}

func requestsCounter(t *testing.T, b *testBundle, method, key, code string) prometheus.Counter {
	t.Helper()
	return counterOf(t, b.reg, "solvequeue_gateway_requests_total", map[string]string{"method": method, "key": key, "code": code})
}

func reportsCounter(t *testing.T, b *testBundle, method, key, typ string) prometheus.Counter {
	t.Helper()
	return counterOf(t, b.reg, "solvequeue_gateway_reports_total", map[string]string{"method": method, "key": key, "task_type": typ})
}

// counterOf reads one sample of a counter family as a Counter (0 when the labels never occurred).
func counterOf(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) prometheus.Counter {
	t.Helper()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue metrics
				}
			}
			c.Add(m.GetCounter().GetValue())
		}
	}
	return c
}

func requireNoKeyInMetrics(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	var buf bytes.Buffer
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		fmt.Fprintln(&buf, mf.String())
	}
	for _, k := range []string{alphaKey, betaKey, gammaKey, deltaKey} {
		require.NotContains(t, buf.String(), k)
	}
}

// requireNoKeyInRedis checks that no gateway key, nor its SHA-256, is stored anywhere in Redis.
func requireNoKeyInRedis(t *testing.T, rc redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	keys, err := rc.Keys(ctx, "*").Result()
	require.NoError(t, err)
	var all strings.Builder
	for _, k := range keys {
		all.WriteString(k + "\n")
		switch rc.Type(ctx, k).Val() {
		case "string":
			all.WriteString(rc.Get(ctx, k).Val())
		case "hash":
			for f, v := range rc.HGetAll(ctx, k).Val() {
				all.WriteString(f + "=" + v + "\n")
			}
		case "list":
			all.WriteString(strings.Join(rc.LRange(ctx, k, 0, -1).Val(), "\n"))
		case "zset":
			all.WriteString(strings.Join(rc.ZRange(ctx, k, 0, -1).Val(), "\n"))
		case "set":
			all.WriteString(strings.Join(rc.SMembers(ctx, k).Val(), "\n"))
		}
	}
	for _, k := range []string{alphaKey, betaKey, gammaKey, deltaKey} {
		require.NotContains(t, all.String(), k, "a gateway key reached Redis")
		require.NotContains(t, all.String(), sha(k), "a gateway key's SHA-256 reached Redis")
	}
}

// TestBadInput sends what a broken or careless client sends: each is a JSON error answer
// naming the field, with the seed's nearest code, and nothing is queued.
func TestBadInput(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	tests := []struct {
		name   string
		method string
		body   any
		code   string
		text   string // part of errorDescription
	}{
		{"not JSON", "createTask", `<html>hi</html>`, gateway.CodeInvalidTaskData, "not valid JSON"},
		{"empty body", "createTask", ``, gateway.CodeInvalidTaskData, "empty"},
		{"truncated", "createTask", `{"clientKey":"` + alphaKey + `","task":{`, gateway.CodeInvalidTaskData, "truncated"},
		{"a list", "createTask", `[1]`, gateway.CodeInvalidTaskData, "must be a JSON object"},
		{"null", "createTask", `null`, gateway.CodeInvalidTaskData, "JSON object"},
		{"trailing data", "createTask", `{"clientKey":"x"} {}`, gateway.CodeInvalidTaskData, "data after"},
		{"no clientKey", "createTask", map[string]any{"task": recaptchaTask("k")}, gateway.CodeKeyDoesNotExist, "clientKey"},
		{"clientKey a number", "createTask", map[string]any{"clientKey": 42, "task": recaptchaTask("k")}, gateway.CodeKeyDoesNotExist, "clientKey"},
		{"unknown key", "createTask", create("gk-nobody-000000000000", recaptchaTask("k")), gateway.CodeKeyDoesNotExist, "not a key"},
		{"no task", "createTask", map[string]any{"clientKey": alphaKey}, gateway.CodeInvalidTaskData, "task is required"},
		{"task a string", "createTask", map[string]any{"clientKey": alphaKey, "task": "RecaptchaV2TaskProxyless"}, gateway.CodeInvalidTaskData, "task must be an object"},
		{"no type", "createTask", create(alphaKey, map[string]any{"websiteURL": "https://a.example"}), gateway.CodeInvalidTaskData, "task.type"},
		{"type a number", "createTask", create(alphaKey, map[string]any{"type": 7}), gateway.CodeInvalidTaskData, "task.type"},
		{"no websiteURL", "createTask", create(alphaKey, map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteKey": "k"}),
			gateway.CodeInvalidWebsite, "task.websiteURL"},
		{"websiteURL without scheme", "createTask", create(alphaKey, map[string]any{"type": "HCaptchaTaskProxyless", "websiteURL": "shop.example", "websiteKey": "k"}),
			gateway.CodeInvalidWebsite, "task.websiteURL"},
		{"no websiteKey", "createTask", create(alphaKey, map[string]any{"type": "TurnstileTaskProxyless", "websiteURL": "https://a.example"}),
			dialectInvalidSitekey, "task.websiteKey"},
		{"image without body", "createTask", create(alphaKey, map[string]any{"type": "ImageToTextTask"}), gateway.CodeInvalidTaskData, "task.body"},
		{"image body not base64", "createTask", create(alphaKey, map[string]any{"type": "ImageToTextTask", "body": "not base64!"}),
			dialectImageType, "task.body"},
		{"bad proxy", "createTask", create(alphaKey, map[string]any{"type": "X", "proxy": "nonsense"}), gateway.CodeInvalidTaskData, "task.proxy"},
		{"provider a number", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "provider": 1},
			gateway.CodeInvalidTaskData, "provider must be a string"},
		{"provider of a megabyte, newlines and bidi", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"),
			"provider": strings.Repeat("Cap\nSolver\u202E", 1<<16)}, gateway.CodeInvalidTaskData, "provider: "},
		{"provider with a newline", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "provider": "Cap\nSolver"},
			gateway.CodeInvalidTaskData, "provider: "},
		{"settings a list", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "settings": []int{1}},
			gateway.CodeInvalidTaskData, "settings must be an object"},
		{"callbackUrl not a URL", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "callbackUrl": "hooks.example"},
			gateway.CodeInvalidTaskData, "callbackUrl"},
		{"callbackUrl to loopback", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "callbackUrl": "http://127.0.0.1:8080/cb"},
			gateway.CodeInvalidTaskData, "public addresses only"},
		{"callbackUrl to the cloud's metadata", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "callbackUrl": "http://169.254.169.254/latest"},
			gateway.CodeInvalidTaskData, "public addresses only"},
		{"callbackUrl to a private v6", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "callbackUrl": "http://[fd00::1]/cb"},
			gateway.CodeInvalidTaskData, "public addresses only"},
		{"callbackUrl to localhost", "createTask", map[string]any{"clientKey": alphaKey, "task": recaptchaTask("k"), "callbackUrl": "https://LOCALHOST./cb"},
			gateway.CodeInvalidTaskData, "this machine"},
		{"getTaskResult without taskId", "getTaskResult", map[string]any{"clientKey": alphaKey}, gateway.CodeInvalidTaskData, "taskId is required"},
		{"taskId an object", "getTaskResult", map[string]any{"clientKey": alphaKey, "taskId": map[string]int{}}, gateway.CodeInvalidTaskData, "taskId must be a number"},
		{"taskId negative", "getTaskResult", map[string]any{"clientKey": alphaKey, "taskId": -5}, dialectNoSuchCaptchaID, "not a task of this key"},
		{"taskId past 2^53", "getTaskResult", map[string]any{"clientKey": alphaKey, "taskId": json.Number("9007199254740993")}, dialectNoSuchCaptchaID, ""},
		{"taskId a fraction", "getTaskResult", map[string]any{"clientKey": alphaKey, "taskId": 1.5}, dialectNoSuchCaptchaID, ""},
		{"unknown method", "solveEverything", map[string]any{"clientKey": alphaKey}, gateway.CodeNoSuchMethod, "createTask"},
		{"a path prefix is not a method", "api/createTask", create(alphaKey, recaptchaTask("k")), gateway.CodeNoSuchMethod, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := b.call(t, tt.method, tt.body)
			requireError(t, a, 1, tt.code)
			require.Contains(t, a["errorDescription"], tt.text)
			require.Less(t, len(a["errorDescription"].(string)), 1024, "the description quotes a bounded part of what was sent")
		})
	}
	requireNothingQueued(t, b)
}

func requireNothingQueued(t *testing.T, b *testBundle) {
	t.Helper()
	queues, err := asynq.NewInspectorFromRedisClient(b.rc).Queues()
	require.NoError(t, err)
	require.Empty(t, queues, "nothing was queued")
}

func TestHugeBody(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	body := `{"clientKey":"` + alphaKey + `","task":{"type":"ImageToTextTask","body":"` + strings.Repeat("A", gateway.MaxBodyDefault) + `"}}`
	requireError(t, b.call(t, gateway.MethodCreateTask, body), 1, dialectTooBig)

	// Without a Content-Length (chunked), the reader stops at the limit all the same.
	req, err := http.NewRequest(http.MethodPost, b.url+"/createTask", io.MultiReader(strings.NewReader(body), strings.NewReader("")))
	require.NoError(t, err)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var a map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.Equal(t, dialectTooBig, a["errorCode"])

	// Just under the limit is read (and refused only for what it says).
	under := `{"clientKey":"` + alphaKey + `","task":{"type":"ImageToTextTask","body":"@@"},"pad":"` +
		strings.Repeat("A", gateway.MaxBodyDefault-200) + `"}`
	requireError(t, b.call(t, gateway.MethodCreateTask, under), 1, dialectImageType)
	requireNothingQueued(t, b)
}

func TestNotPost(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	resp, err := http.Get(b.url + "/getBalance")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "POST", resp.Header.Get("Allow"))
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var a map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.Equal(t, gateway.CodeMethodNotAllowed, a["errorCode"])
}

// TestIsolation: a key cannot read, report on, or detect another key's task. Another key's
// taskId, a taskId that never existed and a guessed one all get the same answer.
func TestIsolation(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	b.startMiniWorker(t)
	alphaTask := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("solve"))))
	require.Equal(t, gateway.StatusReady, b.waitResult(t, alphaKey, alphaTask)["status"])
	betaTask := taskID(t, b.call(t, gateway.MethodCreateTask, create(betaKey, recaptchaTask("solve"))))
	require.Equal(t, gateway.StatusReady, b.waitResult(t, betaKey, betaTask)["status"])

	notFound := func(key string, id any) string {
		a := b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": key, "taskId": id})
		requireError(t, a, 1, dialectNoSuchCaptchaID)
		require.Nil(t, a["solution"])
		// The description quotes only what the client sent.
		return strings.ReplaceAll(a["errorDescription"].(string), fmt.Sprint(id), "N")
	}
	other := notFound(betaKey, alphaTask)
	require.Equal(t, other, notFound(alphaKey, betaTask))
	require.Equal(t, other, notFound(alphaKey, int64(4503599627370000)), "a taskId that never existed reads the same")
	// Guessing: the neighbours of a key's own taskIds and small numbers are nobody's.
	for _, guess := range []int64{1, 2, 3, 64, alphaTask - 1, alphaTask + 1, betaTask - 1, betaTask + 1} {
		if guess == alphaTask || guess <= 0 {
			continue
		}
		require.Equal(t, other, notFound(alphaKey, guess), "guess %d", guess)
	}
	// The owner still reads its own.
	require.Equal(t, gateway.StatusReady, b.waitResult(t, alphaKey, alphaTask)["status"])
}

// TestIdempotencyKey: a retried createTask with the same Idempotency-Key and body gives back the
// first taskId and creates nothing; the same key with another body is refused; keys are per
// gateway key, so another key's Idempotency-Key is its own.
func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	body := create(gammaKey, recaptchaTask("solve"))
	first := taskID(t, b.call(t, gateway.MethodCreateTask, body, gateway.IdempotencyHeader, "order-42"))

	var wg sync.WaitGroup
	answers := make([]map[string]any, 8)
	errs := make([]error, len(answers))
	for i := range answers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i], errs[i] = post(b.url, gateway.MethodCreateTask, body, gateway.IdempotencyHeader, "order-42")
		}()
	}
	wg.Wait()
	for i, a := range answers {
		require.NoError(t, errs[i])
		require.Equal(t, first, taskID(t, a), "a retry gives back the first taskId")
	}
	requirePending(t, b, "gamma", 1)

	changed := create(gammaKey, recaptchaTask("another-site-key"))
	a := b.call(t, gateway.MethodCreateTask, changed, gateway.IdempotencyHeader, "order-42")
	requireError(t, a, 1, gateway.CodeInvalidTaskData)
	require.Contains(t, a["errorDescription"], "another request body")
	requirePending(t, b, "gamma", 1)

	// Without the header, or with another one, a request creates a task.
	require.NotEqual(t, first, taskID(t, b.call(t, gateway.MethodCreateTask, body)))
	require.NotEqual(t, first, taskID(t, b.call(t, gateway.MethodCreateTask, body, gateway.IdempotencyHeader, "order-43")))
	requirePending(t, b, "gamma", 3)

	// Another gateway key's Idempotency-Key of the same text is its own.
	other := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("solve")), gateway.IdempotencyHeader, "order-42"))
	require.NotEqual(t, first, other)

	requireError(t, b.call(t, gateway.MethodCreateTask, body, gateway.IdempotencyHeader, strings.Repeat("k", 256)), 1, gateway.CodeInvalidTaskData)
}

func requirePending(t *testing.T, b *testBundle, queue string, n int) {
	t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(b.rc).GetQueueInfo(queue)
	require.NoError(t, err)
	require.Equal(t, n, info.Size, "tasks in queue %s", queue)
}

func TestRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	// delta may make 3 requests per second, with a burst of 3: a fourth at once is refused.
	limited := 0
	for range 6 {
		a := b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": deltaKey})
		if a["errorCode"] == dialectNoSlot {
			requireError(t, a, 1, dialectNoSlot)
			limited++
		}
	}
	require.GreaterOrEqual(t, limited, 2, "at most 3 (+1 refilled) of 6 requests at once pass")
	require.Equal(t, float64(limited), testutil.ToFloat64(requestsCounter(t, b, gateway.MethodGetBalance, "delta", dialectNoSlot)))
	// Other keys are not held back by delta's limit.
	for range 10 {
		require.NotEqual(t, dialectNoSlot, b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": alphaKey})["errorCode"])
	}
}

// TestOpenOnLoopback: without a keys file any non-empty key is accepted into the default queue;
// an empty one is not; and such a gateway refuses a non-loopback address.
func TestOpenOnLoopback(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	id := taskID(t, b.call(t, gateway.MethodCreateTask, create("anything", recaptchaTask("solve"))))
	jobID, err := b.handler.JobID(context.Background(), gateway.LocalKeyName, id)
	require.NoError(t, err)
	_, err = asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo(enqueue.DefaultQueue, jobID)
	require.NoError(t, err)
	requireError(t, b.call(t, gateway.MethodCreateTask, create("", recaptchaTask("solve"))), 1, gateway.CodeKeyDoesNotExist)

	for _, addr := range []string{":0", "0.0.0.0:0", "192.0.2.1:8090"} {
		_, _, err := gateway.ListenAndServe(context.Background(), b.handler, gateway.ServerConfig{Addr: addr})
		require.ErrorIs(t, err, gateway.ErrKeysRequired, addr)
		require.ErrorContains(t, err, "--keys")
	}
	addr, stop, err := gateway.ListenAndServe(context.Background(), b.handler, gateway.ServerConfig{Addr: "127.0.0.1:0"})
	require.NoError(t, err)
	require.NoError(t, stop(context.Background()))
	require.NotEmpty(t, addr)

	keyed, err := gateway.NewHandler(gateway.Config{Client: b.client, Redis: b.rc, Keys: mustKeys(t)})
	require.NoError(t, err)
	require.NoError(t, gateway.CheckAddr(":8090", keyed), "with keys, any address")
}

func TestIsLoopback(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]bool{"127.0.0.1:8090": true, "[::1]:8090": true, "localhost:8090": true, "127.0.0.2:1": true,
		":8090": false, "0.0.0.0:8090": false, "[::]:8090": false, "10.0.0.1:8090": false, "example.com:8090": false} {
		require.Equal(t, want, gateway.IsLoopback(addr), addr)
	}
}

// TestRedisDown: when Redis is gone the gateway answers errorId 2 (safe to retry), in JSON.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	srv := enqueuetest.Redis(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	t.Cleanup(func() { rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Keys: mustKeys(t), Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	b := &testBundle{url: hs.URL}
	require.NoError(t, srv.Stop())
	a := b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("solve")))
	requireError(t, a, 2, gateway.CodeInternalError)
	requireError(t, b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": alphaKey, "taskId": 5}), 2, gateway.CodeInternalError)
}
