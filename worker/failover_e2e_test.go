package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// TestProviderFailover runs two workers on one real redis-server against a fake AnySolver whose
// provider "Down" is unreachable and "Up" solves. A failing provider is failed over at once
// (without a retry), then skipped by both workers once its breaker opens; a job error is never
// failed over.
func TestProviderFailover(t *testing.T) {
	t.Parallel()
	policy, err := policyfile.Parse("failover.yaml", []byte(`
queues:
  routed:
    providers: [Down, Up]
`))
	require.NoError(t, err)
	srv := enqueuetest.Redis(t)
	ctx := context.Background()
	rc, err := redisconn.Open(ctx, srv.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })

	var mu sync.Mutex
	creates := map[string]int{}
	fake := anysolvertest.New(anysolvertest.Options{APIKeys: []string{testAPIKey}, Balance: 100,
		Script: func(task anysolvertest.Task) anysolvertest.Behavior {
			mu.Lock()
			creates[task.Provider]++
			mu.Unlock()
			switch {
			case task.Provider == "Down":
				return anysolvertest.Behavior{CreateError: "PROVIDER_UNREACHABLE"}
			case task.Key == "banned":
				return anysolvertest.Behavior{CreateError: "DOMAIN_BANNED"}
			}
			return anysolvertest.Behavior{Immediate: true}
		}})
	as := httptest.NewServer(fake)
	t.Cleanup(as.Close)
	for range 2 {
		client, err := anysolver.New(anysolver.Config{BaseURL: as.URL, APIKey: testAPIKey})
		require.NoError(t, err)
		w, err := worker.New(worker.Config{Redis: rc, AnySolver: client, Policy: policy,
			Queues: map[string]int{"routed": 1, "pair": 1}, Concurrency: 20,
			Observer: worker.NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
		require.NoError(t, err)
		require.NoError(t, w.Start(ctx))
		t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
	}
	producer, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run := func(job enqueue.Job) enqueue.Outcome {
		t.Helper()
		id, err := producer.Submit(ctx, job)
		require.NoError(t, err)
		out, err := producer.WaitIn(waitCtx, job.Queue, id)
		require.NoError(t, err)
		return out
	}
	task := func(key string) map[string]any {
		return map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": key}
	}

	// One job at a time, so that the breaker's count is exact: each of the first five meets
	// Down, fails over to Up at once and is solved there, spending no retry.
	for i := range breaker.ProviderFailuresDefault {
		out := run(enqueue.Job{ID: fmt.Sprintf("first-%d", i), Queue: "routed", Task: task(fmt.Sprintf("k%d", i))})
		require.Equal(t, enqueue.StateSolved, out.State)
		require.Equal(t, []string{"Down", "Up"}, out.ProvidersTried)
		require.Equal(t, "Up", out.Provider, "the provider that solved it")
		require.Zero(t, out.Retries, "a failover spends no retry")
	}
	// Down failed five times in a row: both workers now skip it for its cool-down.
	for i := range 4 {
		out := run(enqueue.Job{ID: fmt.Sprintf("later-%d", i), Queue: "routed", Task: task(fmt.Sprintf("l%d", i))})
		require.Equal(t, enqueue.StateSolved, out.State)
		require.Equal(t, []string{"Up"}, out.ProvidersTried, "an open provider is skipped")
	}
	mu.Lock()
	require.Equal(t, breaker.ProviderFailuresDefault, creates["Down"], "Down was not called once its breaker opened")
	mu.Unlock()

	// A job error blames the job, not the provider: it is never failed over.
	out := run(enqueue.Job{ID: "banned-1", Queue: "pair", Providers: []string{"Up", "Other"}, Task: task("banned")})
	require.Equal(t, enqueue.StateFailed, out.State)
	require.Equal(t, "DOMAIN_BANNED", out.Error.ErrorCode)
	require.Equal(t, []string{"Up"}, out.ProvidersTried)
	mu.Lock()
	require.Zero(t, creates["Other"])
	mu.Unlock()
}

// TestTenantProviderCannotOpenTheBreaker runs jobs on a real redis-server against a fake
// AnySolver where "Invented" and "Listed" are unreachable and "Up" solves. The provider breaker
// is shared by every queue, so only a provider the operator's policy names may open it: jobs
// that name "Invented" themselves fail over each time and never open its breaker, however many
// fail, while "Listed" (named in the policy) is skipped once its breaker opens.
func TestTenantProviderCannotOpenTheBreaker(t *testing.T) {
	t.Parallel()
	policy, err := policyfile.Parse("failover.yaml", []byte(`
queues:
  routed:
    providers: [Listed, Up]
`))
	require.NoError(t, err)
	var mu sync.Mutex
	creates := map[string]int{}
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{testAPIKey}, Balance: 100,
		Script: func(task anysolvertest.Task) anysolvertest.Behavior {
			mu.Lock()
			creates[task.Provider]++
			mu.Unlock()
			if task.Provider == "Invented" || task.Provider == "Listed" {
				return anysolvertest.Behavior{CreateError: "PROVIDER_UNREACHABLE"}
			}
			return anysolvertest.Behavior{Immediate: true}
		}})
	rig.Start(t, worker.Config{Policy: policy, Queues: map[string]int{"routed": 1, "tenant": 1}, Concurrency: 4,
		Observer: worker.NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.DiscardHandler)})
	ctx := context.Background()
	producer, err := enqueue.NewClient(enqueue.Config{Redis: rig.RC})
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	run := func(job enqueue.Job) enqueue.Outcome {
		t.Helper()
		id, err := producer.Submit(ctx, job)
		require.NoError(t, err)
		out, err := producer.WaitIn(waitCtx, job.Queue, id)
		require.NoError(t, err)
		require.Equal(t, enqueue.StateSolved, out.State)
		return out
	}
	task := func(key string) map[string]any {
		return map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": key}
	}

	// Twice the failures that open a breaker, one job at a time: every job still meets Invented.
	n := 2 * breaker.ProviderFailuresDefault
	for i := range n {
		out := run(enqueue.Job{ID: fmt.Sprintf("tenant-%d", i), Queue: "tenant", Providers: []string{"Invented", "Up"}, Task: task(fmt.Sprintf("t%d", i))})
		require.Equal(t, []string{"Invented", "Up"}, out.ProvidersTried, "job %d: Invented's breaker stays closed", i)
	}
	mu.Lock()
	require.Equal(t, n, creates["Invented"])
	mu.Unlock()

	// The policy's provider opens its breaker as before, and is skipped then.
	for i := range breaker.ProviderFailuresDefault {
		out := run(enqueue.Job{ID: fmt.Sprintf("routed-%d", i), Queue: "routed", Task: task(fmt.Sprintf("r%d", i))})
		require.Equal(t, []string{"Listed", "Up"}, out.ProvidersTried)
	}
	out := run(enqueue.Job{ID: "routed-after", Queue: "routed", Task: task("after")})
	require.Equal(t, []string{"Up"}, out.ProvidersTried, "Listed's breaker is open")
	mu.Lock()
	require.Equal(t, breaker.ProviderFailuresDefault, creates["Listed"])
	mu.Unlock()
}
