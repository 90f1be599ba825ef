package worker_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// createCount counts the createTask calls that reached AnySolver.
type createCount struct {
	mu sync.Mutex
	n  int
}

func (c *createCount) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/createTask") {
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}

func (c *createCount) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// TestBudgetHoldsExactlyAcrossTwoWorkers runs two workers per queue on one real redis-server, a
// queue with a count budget and a queue with a money budget, seven jobs each. The proof is in
// counts, not clocks: a budget of four (three) per window lets exactly four (three) jobs through
// at first, across both workers (were it per worker, all seven would pass), so at least three
// (four) jobs are held; a held job is neither paid nor failed nor charged a retry, and ends
// solved, paid once, after the window rolls. That the window rolls at the right moment is
// internal/ledger's test, on a clock it moves.
func TestBudgetHoldsExactlyAcrossTwoWorkers(t *testing.T) {
	t.Parallel()
	const window = 10 * time.Second
	policy, err := policyfile.Parse("budget.yaml", []byte(fmt.Sprintf(`
queues:
  counted:
    budget: {window: %s, maxCreateTasks: 4}
  priced:
    budget: {window: %s, maxCost: 0.003, estimatedCost: 0.001}
`, window, window)))
	require.NoError(t, err)

	srv := enqueuetest.Redis(t)
	ctx := context.Background()
	rc, err := redisconn.Open(ctx, srv.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })

	creates := map[string]*createCount{"counted": {}, "priced": {}}
	fake := anysolvertest.New(anysolvertest.Options{APIKeys: []string{testAPIKey}, Balance: 100, Cost: 0.001,
		Script: func(anysolvertest.Task) anysolvertest.Behavior { return anysolvertest.Behavior{Immediate: true} }})
	byQueue := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Each worker below talks to AnySolver through its queue's path prefix.
		q, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		r.URL.Path = "/" + rest
		creates[q].wrap(fake).ServeHTTP(w, r)
	})
	as := httptest.NewServer(byQueue)
	t.Cleanup(as.Close)

	logs := &enqueuetest.LogBuffer{}
	for _, q := range []string{"counted", "priced"} {
		for range 2 {
			client, err := anysolver.New(anysolver.Config{BaseURL: as.URL + "/" + q, APIKey: testAPIKey})
			require.NoError(t, err)
			w, err := worker.New(worker.Config{Redis: rc, AnySolver: client, Policy: policy, Queues: map[string]int{q: 1},
				Concurrency: 20, Observer: worker.NewMetrics(prometheus.NewRegistry()),
				Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
			require.NoError(t, err)
			require.NoError(t, w.Start(ctx))
			t.Cleanup(func() { _ = w.Shutdown(context.Background()) })
		}
	}

	producer, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	var ids []string
	for _, q := range []string{"counted", "priced"} {
		for i := range 7 {
			id, err := producer.Submit(ctx, enqueue.Job{ID: fmt.Sprintf("%s-%d", q, i), Queue: q, Task: map[string]any{
				"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": "k"}})
			require.NoError(t, err)
			ids = append(ids, id)
		}
	}
	// Seven jobs at four (or three) per window: every job ends after the window rolls once.
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	held := map[string]int{}
	for _, id := range ids {
		q, _, _ := strings.Cut(id, "-")
		out, err := producer.WaitIn(waitCtx, q, id)
		require.NoError(t, err, "job %s did not end", id)
		require.Equal(t, enqueue.StateSolved, out.State, "job %s: %+v", id, out.Error)
		require.Equal(t, 1, out.CreateTasks, "a held job is not paid while held")
		require.Zero(t, out.Retries, "a hold spends no retry")
		if out.Throttles > 0 {
			held[q]++
		}
	}
	require.Equal(t, 7, creates["counted"].count(), "one createTask per job")
	require.Equal(t, 7, creates["priced"].count(), "one createTask per job")
	// The jobs past the cap either met the spent budget (held, counted here) or waited in the
	// queue it paused: at least one met it in each queue, whatever the fetch order.
	require.GreaterOrEqual(t, held["counted"], 1, "four createTasks per window across both workers: a job was held")
	require.GreaterOrEqual(t, held["priced"], 1, "0.003 per window at 0.001 a task across both workers: a job was held")
	require.Contains(t, logs.String(), "budget has room again: queue resumed", "the held queue resumed by itself")
	require.Contains(t, logs.String(), "budget spent: queue paused", "a spent budget pauses its queue")

	u, err := ledger.New(rc).Read(ctx, "priced", *policy.Queue("priced").Budget)
	require.NoError(t, err)
	require.LessOrEqual(t, u.Cost, 0.003+1e-9, "settled with AnySolver's reported cost")
}
