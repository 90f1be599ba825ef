package worker_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

const callbackSecret = "cb-secret-1d9f0e4c7a2b"

// receiver is a callback endpoint that records what it got and answers as told.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	bodies  [][]byte
	headers []http.Header
	status  atomic.Int32 // the status to answer; 0 is 200
	// refuseFirst answers 503 to the first try of each delivery (by its X-Solvequeue-Delivery).
	refuseFirst atomic.Bool
	tried       map[string]bool
	got         chan struct{}
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{got: make(chan struct{}, 100), tried: map[string]bool{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, body)
		r.headers = append(r.headers, req.Header.Clone())
		delivery := req.Header.Get(callback.DeliveryHeader)
		first := !r.tried[delivery]
		r.tried[delivery] = true
		r.mu.Unlock()
		if s := r.status.Load(); s != 0 {
			w.WriteHeader(int(s))
		} else if first && r.refuseFirst.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// wait waits for the receiver's n-th call.
func (r *receiver) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for r.calls() < n {
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("the receiver got %d calls, want %d", r.calls(), n)
		}
	}
}

// callbackBundle is the rig (a real redis-server, the fake AnySolver) and workers started with
// the callback settings a test asks for.
type callbackBundle struct {
	rig    *workertest.Rig
	client *enqueue.Client
	admin  *admin.Client
	fake   *anysolvertest.Server
	reg    *prometheus.Registry
	logs   *enqueuetest.LogBuffer
}

func setupCallbacks(t *testing.T) *callbackBundle {
	t.Helper()
	b := &callbackBundle{logs: &enqueuetest.LogBuffer{}}
	b.rig = workertest.New(t, anysolvertest.Options{APIKeys: []string{testAPIKey}, Balance: 42.5,
		Script: anysolvertest.DirectiveScript(func(t anysolvertest.Task) anysolvertest.Behavior {
			return anysolvertest.Behavior{SolveTime: 100 * time.Millisecond}
		})})
	b.fake = b.rig.Fake
	var err error
	b.client, err = enqueue.NewClient(enqueue.Config{Redis: b.rig.RC})
	require.NoError(t, err)
	b.admin, err = admin.NewClient(admin.Config{Redis: b.rig.RC})
	require.NoError(t, err)
	return b
}

// start runs a worker, with a Redis client of its own; stop ends it (it is also stopped when the
// test ends).
func (b *callbackBundle) start(t *testing.T, mutate func(*worker.Config)) (stop func()) {
	t.Helper()
	rc := b.rig.Open(t)
	as := b.rig.AnySolver(t, anysolver.Config{APIKey: testAPIKey, Timeout: 2 * time.Second})
	b.reg = prometheus.NewRegistry()
	cfg := worker.Config{Redis: rc, AnySolver: as, Policy: fastPolicy(t), Queues: map[string]int{"default": 1},
		Concurrency: 10, ShutdownTimeout: time.Second, Poll: worker.PollConfig{Fixed: true, Interval: 50 * time.Millisecond},
		CallbackSecret: callbackSecret, CallbackAllowPrivate: true, CallbackBackoff: 100 * time.Millisecond,
		Observer: worker.NewMetrics(b.reg),
		Logger:   slog.New(slog.NewJSONHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if mutate != nil {
		mutate(&cfg)
	}
	_, stop = b.rig.Start(t, cfg)
	return stop
}

// submit submits a job of gateway key "alpha" with taskId 4242.
func (b *callbackBundle) submit(t *testing.T, id, websiteKey, callbackURL string) {
	t.Helper()
	b.submitAs(t, id, websiteKey, callbackURL, "alpha", 4242)
}

// submitAs submits a job of the gateway key keyName with the gateway's taskId; a job of no key
// ("" and 0) is a producer's.
func (b *callbackBundle) submitAs(t *testing.T, id, websiteKey, callbackURL, keyName string, taskID int64) {
	t.Helper()
	job := recaptcha(id, websiteKey)
	job.CallbackURL, job.KeyName, job.GatewayTaskID = callbackURL, keyName, taskID
	_, err := b.client.Submit(context.Background(), job)
	require.NoError(t, err)
}

func (b *callbackBundle) callbacks(t *testing.T, result string) float64 {
	t.Helper()
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "solvequeue_callbacks_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == result {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

// TestCallbackDelivered: when a job ends, its getTaskResult answer, its taskId and its id are
// POSTed to its callbackUrl, signed with its key's secret, derived from the shared one.
func TestCallbackDelivered(t *testing.T) {
	t.Parallel()
	b := setupCallbacks(t)
	b.start(t, nil)
	r := newReceiver(t)
	b.submit(t, "cb-solved", "plain-key", r.srv.URL+"/hook?x=1")
	b.submit(t, "cb-failed", "sq:create=DOMAIN_BANNED*9", r.srv.URL+"/hook")
	r.wait(t, 2)

	byID := map[string]map[string]any{}
	r.mu.Lock()
	for i, body := range r.bodies {
		require.True(t, genuine(callback.KeySecret(callbackSecret, "alpha"), r.headers[i], body))
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		byID[m["id"].(string)] = m
	}
	r.mu.Unlock()

	solved := byID["cb-solved"]
	require.Equal(t, "ready", solved["status"])
	require.Equal(t, 0.0, solved["errorId"])
	require.Equal(t, 4242.0, solved["taskId"])
	require.NotEmpty(t, solved["solution"])
	require.NotEmpty(t, solved["cost"])
	failed := byID["cb-failed"]
	require.Equal(t, "failed", failed["status"])
	require.Equal(t, 1.0, failed["errorId"])
	// A job that came through the gateway is called back in the gateway's dialect, its own code
	// starting the description.
	require.Equal(t, "ERROR_DOMAIN_NOT_ALLOWED", failed["errorCode"])
	require.True(t, strings.HasPrefix(failed["errorDescription"].(string), "DOMAIN_BANNED: "), failed["errorDescription"])
	require.Eventually(t, func() bool { return b.callbacks(t, "delivered") == 2 }, 10*time.Second, 20*time.Millisecond)
	require.NotContains(t, b.logs.String(), callbackSecret)
}

// TestCallbackRetriedAcrossARestart: a receiver that fails is tried again with backoff; the
// delivery waits in Redis, so a worker that stops in between does not lose it.
func TestCallbackRetriedAcrossARestart(t *testing.T) {
	t.Parallel()
	b := setupCallbacks(t)
	stop := b.start(t, nil)
	r := newReceiver(t)
	r.status.Store(http.StatusServiceUnavailable)
	b.submit(t, "cb-retry", "plain-key", r.srv.URL)
	r.wait(t, 1)
	stop()
	first := r.calls()

	r.status.Store(0)
	b.start(t, nil)
	r.wait(t, first+1)
	require.Eventually(t, func() bool { return b.callbacks(t, "delivered") == 1 }, 10*time.Second, 20*time.Millisecond)
	var m map[string]any
	r.mu.Lock()
	require.NoError(t, json.Unmarshal(r.bodies[len(r.bodies)-1], &m))
	require.Equal(t, r.bodies[0], r.bodies[len(r.bodies)-1], "every try sends the same body")
	r.mu.Unlock()
	require.Equal(t, "cb-retry", m["id"])
}

// TestCallbackPrivateAddressRefused: without CallbackAllowPrivate a callback whose host is, or
// resolves to, a loopback address is refused at the connection, never sent.
func TestCallbackPrivateAddressRefused(t *testing.T) {
	t.Parallel()
	b := setupCallbacks(t)
	b.start(t, func(c *worker.Config) { c.CallbackAllowPrivate = false })
	r := newReceiver(t)
	port := r.srv.URL[strings.LastIndex(r.srv.URL, ":"):]
	b.submit(t, "cb-ip", "plain-key", r.srv.URL)
	b.submit(t, "cb-name", "plain-key", "http://localhost"+port+"/hook") // a name resolving to loopback
	require.Eventually(t, func() bool { return b.callbacks(t, "refused") == 2 }, 30*time.Second, 20*time.Millisecond)
	require.Zero(t, r.calls(), "nothing reached the private address")
}

// TestCallbackRedirectNotFollowed: a 3xx is an answer, not a delivery, and its target is never called.
func TestCallbackRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	b := setupCallbacks(t)
	b.start(t, func(c *worker.Config) { c.CallbackWindow = 2 * time.Second })
	target := newReceiver(t)
	var redirects atomic.Int32
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		redirects.Add(1)
		http.Redirect(w, req, target.srv.URL, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	b.submit(t, "cb-redirect", "plain-key", redirector.URL)
	require.Eventually(t, func() bool { return b.callbacks(t, "abandoned") == 1 }, 30*time.Second, 20*time.Millisecond)
	require.GreaterOrEqual(t, redirects.Load(), int32(1))
	require.Zero(t, target.calls(), "the redirect's target is never called")
	require.Equal(t, float64(redirects.Load()-1), b.callbacks(t, "retried"))
}

// TestBalancePublished: a worker reads AnySolver's balance at start and then every interval,
// and publishes it in Redis (for the gateway) and as solvequeue_anysolver_balance.
func TestBalancePublished(t *testing.T) {
	t.Parallel()
	b := setupCallbacks(t)
	b.start(t, func(c *worker.Config) { c.BalanceInterval = 100 * time.Millisecond })
	rc := b.rig.RC
	require.Eventually(t, func() bool {
		bal, err := balance.Read(context.Background(), rc)
		return err == nil && bal.Balance == 42.5
	}, 10*time.Second, 20*time.Millisecond)
	b.fake.SetBalance(3.25)
	require.Eventually(t, func() bool {
		bal, err := balance.Read(context.Background(), rc)
		return err == nil && bal.Balance == 3.25
	}, 10*time.Second, 20*time.Millisecond)
	require.Eventually(t, func() bool {
		return testutil.ToFloat64(gauge(t, b.reg, "solvequeue_anysolver_balance")) == 3.25
	}, 10*time.Second, 20*time.Millisecond)
	require.Positive(t, b.fake.Calls("getBalance"))
}

// gauge reads a gauge family with no labels as a Gauge.
func gauge(t *testing.T, reg *prometheus.Registry, name string) prometheus.Gauge {
	t.Helper()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "x"})
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			g.Set(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return g
}

// bodyOf returns the receiver's first body of outcome seq of job id, and whether it got one.
func (r *receiver) bodyOf(t *testing.T, id string, seq int) (map[string]any, bool) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, body := range r.bodies {
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		if m["id"] == id && m["outcomeSeq"] == float64(seq) {
			return m, true
		}
	}
	return nil, false
}

// waitBody waits for the receiver's first body of outcome seq of job id.
func (r *receiver) waitBody(t *testing.T, id string, seq int) map[string]any {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m, ok := r.bodyOf(t, id, seq); ok {
			return m
		}
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("no callback of outcome %d of job %s in %d calls", seq, id, r.calls())
		}
	}
}

// TestCallbackOfARedriveWhileTheFirstIsRetried: a redriven job's new outcome is called back in
// a delivery of its own while the first outcome's delivery is still being retried (the receiver
// refused it); both are delivered once it answers, each once, and the higher outcomeSeq carries
// the job's final state. A pending delivery is never taken for a job.
func TestCallbackOfARedriveWhileTheFirstIsRetried(t *testing.T) {
	t.Parallel()
	b := setupCallbacks(t)
	b.start(t, nil)
	ctx := context.Background()
	r := newReceiver(t)
	r.status.Store(http.StatusServiceUnavailable)
	const id = "cb-redrive"
	b.submit(t, id, "sq:id=cb-redrive;create=UNKNOWN_PROVIDER_ERROR*1", r.srv.URL)
	first := r.waitBody(t, id, 1) // refused: its delivery is retried from now on
	require.Equal(t, "failed", first["status"])
	require.Equal(t, "UNKNOWN_PROVIDER_ERROR", first["errorCode"])
	out, err := b.client.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, enqueue.StateDead, out.State)

	_, err = b.client.Status(ctx, "cb-"+id+"-1")
	require.ErrorIs(t, err, enqueue.ErrJobNotFound, "a delivery waiting in Redis is not a job")

	// The fake now solves this key (its one scripted failure is spent): redrive.
	d, err := b.admin.DeadLetter(ctx, "default", id)
	require.NoError(t, err)
	require.NoError(t, b.admin.Redrive(ctx, d))
	out, err = b.client.Wait(ctx, id)
	require.NoError(t, err)
	require.Equal(t, enqueue.StateSolved, out.State)
	second := r.waitBody(t, id, 2) // refused too, yet tried beside the first one's retries
	require.Equal(t, "ready", second["status"])
	require.NotEmpty(t, second["solution"])
	require.Equal(t, 4242.0, second["taskId"])

	r.status.Store(0)
	require.Eventually(t, func() bool { return b.callbacks(t, "delivered") == 2 }, 30*time.Second, 20*time.Millisecond)
	latest := map[string]any{}
	deliveries := map[float64]map[string]bool{} // outcomeSeq to the delivery IDs its tries carried
	r.mu.Lock()
	for i, body := range r.bodies {
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		if latest["outcomeSeq"] == nil || m["outcomeSeq"].(float64) > latest["outcomeSeq"].(float64) {
			latest = m
		}
		seq := m["outcomeSeq"].(float64)
		if deliveries[seq] == nil {
			deliveries[seq] = map[string]bool{}
		}
		deliveries[seq][r.headers[i].Get(callback.DeliveryHeader)] = true
	}
	r.mu.Unlock()
	require.Len(t, deliveries[1], 1, "every try of the first outcome's delivery carries one ID")
	require.Len(t, deliveries[2], 1, "every try of the second outcome's delivery carries one ID")
	require.NotEqual(t, deliveries[1], deliveries[2], "each outcome's delivery has an ID of its own")
	require.Equal(t, 2.0, latest["outcomeSeq"])
	require.Equal(t, "ready", latest["status"], "the latest outcome is the final state")
}

// TestCallbackDeliveredWhileItsQueueIsPaused: a delivery is not held by what holds solving: the
// job's queue paused by the breaker the job itself opened (ERROR_ZERO_BALANCE, the balance still
// empty), or by an operator, while its first try was being retried.
func TestCallbackDeliveredWhileItsQueueIsPaused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		websiteKey string
		noFunds    bool // the account is empty: a breaker that opens stays open
		pause      func(t *testing.T, b *callbackBundle)
		wantCode   string
	}{
		{name: "by the breaker", websiteKey: "sq:id=cb-breaker;create=ERROR_ZERO_BALANCE*9", noFunds: true, wantCode: "ERROR_NO_SLOT_AVAILABLE", // the operator's account, never the client's
			pause: func(t *testing.T, b *callbackBundle) {
				require.Eventually(t, func() bool {
					s, err := breaker.Read(context.Background(), b.rig.RC)
					return err == nil && s.Open && len(s.PausedQueues) == 1
				}, 30*time.Second, 20*time.Millisecond)
				s, err := breaker.Read(context.Background(), b.rig.RC)
				require.NoError(t, err)
				require.Equal(t, []string{"default"}, s.PausedQueues, "the breaker pauses the job queues alone")
			}},
		{name: "by an operator", websiteKey: "plain-key-paused",
			pause: func(t *testing.T, b *callbackBundle) {
				require.NoError(t, asynq.NewInspectorFromRedisClient(b.rig.RC).PauseQueue("default"))
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setupCallbacks(t)
			if tt.noFunds {
				b.fake.SetBalance(0)
			}
			b.start(t, nil)
			r := newReceiver(t)
			r.status.Store(http.StatusServiceUnavailable)
			b.submit(t, "cb-paused", tt.websiteKey, r.srv.URL)
			r.wait(t, 1)
			tt.pause(t, b)
			info, err := asynq.NewInspectorFromRedisClient(b.rig.RC).GetQueueInfo("default")
			require.NoError(t, err)
			require.True(t, info.Paused)

			r.status.Store(0)
			require.Eventually(t, func() bool { return b.callbacks(t, "delivered") == 1 }, 30*time.Second, 20*time.Millisecond)
			m, ok := r.bodyOf(t, "cb-paused", 1)
			require.True(t, ok)
			if tt.wantCode != "" {
				require.Equal(t, tt.wantCode, m["errorCode"])
			}
			info, err = asynq.NewInspectorFromRedisClient(b.rig.RC).GetQueueInfo("default")
			require.NoError(t, err)
			require.True(t, info.Paused, "delivered while the job's queue stayed paused")
			cbInfo, err := asynq.NewInspectorFromRedisClient(b.rig.RC).GetQueueInfo(callback.Queue)
			require.NoError(t, err)
			require.False(t, cbInfo.Paused)
		})
	}
}
