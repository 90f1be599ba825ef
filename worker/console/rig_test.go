package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// Secrets that must never reach a page: the AnySolver key and the jobs' proxy passwords.
const (
	apiKey        = "sk-console-9d1f04c2e7"
	proxyPassword = "Fie1dPassw0rd!"
	proxyURLPass  = "Ur1Passw0rdZ"
	httpPassword  = "console-http-pw-71"
)

var secrets = []string{apiKey, proxyPassword, proxyURLPass, httpPassword}

// testPolicy: quick retries, a budget on default, a provider list on scrapers. Throttles wait 10
// minutes or more, so that order-46 stays retrying while the tests look at it: with the default
// 5 s it went active again now and then, and a page read at that moment did not list it.
const testPolicy = `retry: {maxRetries: 3, baseDelay: 100ms, maxDelay: 200ms}
throttle: {minWait: 10m, maxWait: 1h}
queues:
  default:
    budget: {window: 1h, maxCost: 5, maxCreateTasks: 1000}
  scrapers:
    providers: [CapSolver, CapMonster]
`

// bundle is a real Redis, the fake AnySolver and a running worker, with jobs that ended in
// every way an operator meets: order-42 dead (it solves when run again), order-43 failed
// (likewise), solved ones, one that failed over between providers, and one still throttled.
type bundle struct {
	rig    *workertest.Rig
	rc     redis.UniversalClient
	client *enqueue.Client
	fake   *anysolvertest.Server
	policy *policyfile.Policy
	logs   *enqueuetest.LogBuffer
	log    *slog.Logger
}

// setupBare is the rig (a real Redis with a client, the fake AnySolver) and the test policy: no
// worker, no jobs.
func setupBare(t *testing.T) *bundle {
	t.Helper()
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{apiKey}, Script: anysolvertest.DirectiveScript(nil)})
	rc := rig.RC
	policy, err := policyfile.Parse("console.yaml", []byte(testPolicy))
	require.NoError(t, err)
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	logs := &enqueuetest.LogBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &bundle{rig: rig, rc: rc, fake: rig.Fake, client: client, policy: policy, logs: logs, log: log}
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx := context.Background()
	b := setupBare(t)
	b.rig.Start(t, worker.Config{Policy: b.policy,
		Queues: map[string]int{"default": 2, "scrapers": 1}, Concurrency: 20,
		Poll: worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond}, Logger: b.log})
	client := b.client

	proxyFields := map[string]any{"proxyType": "http", "proxyAddress": "10.1.2.3", "proxyPort": 3128,
		"proxyLogin": "scraper", "proxyPassword": proxyPassword}
	jobs := []enqueue.Job{
		b.job("order-42", "default", "sq:id=o42;create=UNKNOWN_PROVIDER_ERROR;solve=200ms", proxyFields),
		b.job("order-43", "default", "sq:id=o43;create=DOMAIN_BANNED;solve=200ms",
			map[string]any{"proxy": "http://scraper:" + proxyURLPass + "@10.1.2.3:3128"}),
		b.job("order-44", "default", "sq:id=o44;solve=200ms", nil),
		b.job("order-45", "default", "sq:id=o45;create=SERVICE_UNAVAILABLE;solve=200ms", proxyFields),
		b.job("scrape-1", "scrapers", "sq:id=s1;create=PROVIDER_UNREACHABLE;solve=200ms", nil),
		b.job("scrape-2", "scrapers", "sq:id=s2;create=NO_PROVIDERS_AVAILABLE*2", nil),
	}
	for _, j := range jobs {
		_, err := client.Submit(ctx, j)
		require.NoError(t, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for _, j := range jobs {
		_, err := client.WaitIn(waitCtx, j.Queue, j.ID)
		require.NoError(t, err, "job %s", j.ID)
	}
	// Throttled for a long while: an in-flight job with an error.
	_, err := client.Submit(ctx, b.job("order-46", "default", "sq:id=o46;create=RATE_LIMITED*1000", nil))
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		out, err := client.Status(ctx, "order-46")
		return err == nil && out.State == enqueue.StateRetrying
	}, 30*time.Second, 50*time.Millisecond)
	return b
}

func (b *bundle) job(id, queue, key string, extra map[string]any) enqueue.Job {
	task := map[string]any{"type": "RecaptchaV2Task", "websiteURL": "https://shop.example/login", "websiteKey": key}
	for k, v := range extra {
		task[k] = v
	}
	return enqueue.Job{ID: id, Queue: queue, Task: task}
}

// state reads a job's state.
func (b *bundle) state(t *testing.T, queue, id string) enqueue.State {
	t.Helper()
	out, err := b.client.StatusIn(context.Background(), queue, id)
	require.NoError(t, err)
	return out.State
}

// waitState waits for a job to reach a state.
func (b *bundle) waitState(t *testing.T, queue, id string, want enqueue.State) {
	t.Helper()
	require.Eventually(t, func() bool {
		out, err := b.client.StatusIn(context.Background(), queue, id)
		return err == nil && out.State == want
	}, 60*time.Second, 50*time.Millisecond, "job %s never became %s", id, want)
}

// session is a browser-like HTTP client: it keeps cookies and sends the basic-auth user.
type session struct {
	t          *testing.T
	base       string
	user, pass string
	c          *http.Client
}

func newSession(t *testing.T, base, user, pass string) *session {
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &session{t: t, base: base, user: user, pass: pass,
		c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (s *session) do(req *http.Request) (int, string) {
	s.t.Helper()
	if s.user != "" {
		req.SetBasicAuth(s.user, s.pass)
	}
	resp, err := s.c.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	return resp.StatusCode, string(body)
}

func (s *session) get(path string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodGet, s.base+path, nil)
	require.NoError(s.t, err)
	return s.do(req)
}

// post sends a form as a browser on the console's own page would (Sec-Fetch-Site same-origin),
// with header overriding or adding headers.
func (s *session) post(path string, form url.Values, header map[string]string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequestWithContext(s.t.Context(), http.MethodPost, s.base+path, strings.NewReader(form.Encode()))
	require.NoError(s.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return s.do(req)
}

// requireNoSecret fails when a page shows any secret.
func requireNoSecret(t *testing.T, where, body string) {
	t.Helper()
	for _, s := range secrets {
		require.NotContains(t, body, s, "%s shows a secret", where)
	}
}
