package attempt

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/spend"
)

// spendCounter keeps the costs the handler reports as spent.
type spendCounter struct {
	metrics.NopObserver
	mu    sync.Mutex
	spent []float64
}

func (s *spendCounter) Spent(_ string, cost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spent = append(s.spent, cost)
}

type spendBundle struct {
	rc      *redis.Client
	ledger  *ledger.Ledger
	policy  *policyfile.Policy
	h       *Handler
	watcher *spend.Watcher
	spent   *spendCounter
}

// spendSetup gives a handler and a budget watcher over one ledger on miniredis, for queue q
// with the budget in the policy text budgetYAML.
func spendSetup(t *testing.T, budgetYAML string) *spendBundle {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	policy, err := policyfile.Parse("policy.yaml", []byte("queues:\n  q:\n    budget: "+budgetYAML+"\n"))
	require.NoError(t, err)
	b := &spendBundle{rc: rc, ledger: ledger.New(rc), policy: policy, spent: &spendCounter{}}
	log := slog.New(slog.DiscardHandler)
	b.h = &Handler{budgets: b.ledger, policy: policy, observer: b.spent, log: log}
	b.watcher = spend.New(spend.Params{Ledger: b.ledger, Policy: policy, Queues: []string{"q"},
		Interval: time.Second, Observer: metrics.NopObserver{}, Log: log})
	return b
}

func jobOf(taskType string) *attempt {
	return &attempt{id: "job-" + taskType, queue: "q", payload: jobwire.Payload{Task: map[string]any{"type": taskType}}}
}

// TestResumedAttemptSettlesOnce: an attempt settles its reservation when its remote task is
// ready, then its terminal record fails to save and asynq hands the job back; the next attempt
// loads the record saved while polling, which still holds the reservation, resumes the remote
// task, finds it ready and settles again. The budget and the metrics count the cost once.
func TestResumedAttemptSettlesOnce(t *testing.T) {
	t.Parallel()
	b := spendSetup(t, "{window: 1h, maxCost: 1, estimatedCost: 0.002}")
	ctx := context.Background()
	first := jobOf("TurnstileToken")
	spent, _, err := b.h.reserve(ctx, first)
	require.NoError(t, err)
	require.False(t, spent)
	require.NotNil(t, first.rec.Budget)
	saved := first.rec // what saveAcked recorded with the remote task id

	b.h.settle(ctx, first, 0.003)
	require.Nil(t, first.rec.Budget)
	second := jobOf("TurnstileToken")
	second.rec = saved
	b.h.settle(ctx, second, 0.003)

	u, err := b.ledger.Read(ctx, "q", *b.policy.Queue("q").Budget)
	require.NoError(t, err)
	require.InDelta(t, 0.003, u.Cost, 1e-9, "the cost counts once in the window")
	require.Equal(t, []float64{0.003}, b.spent.spent, "and once in the metrics")
}

// TestBudgetWatcherDoesNotFlap drives the budget watcher tick by tick, a worker fetching one
// reCAPTCHA job whenever the queue is not paused. With a sliver of room that is more than
// estimatedCost but less than a reCAPTCHA is observed to cost, the queue stays paused through
// every tick: no resume that the next reservation undoes. Once a settlement leaves room for
// exactly one, the watcher resumes once, that job fits, the next is held and the queue stays
// paused again.
func TestBudgetWatcherDoesNotFlap(t *testing.T) {
	t.Parallel()
	b := spendSetup(t, "{window: 1h, maxCost: 0.012, estimatedCost: 0.002}")
	ctx := context.Background()
	dear, cheap := jobOf("ReCaptchaV2Token"), jobOf("ImageToTextTask")
	for _, a := range []*attempt{dear, cheap} {
		spent, _, err := b.h.reserve(ctx, a)
		require.NoError(t, err)
		require.False(t, spent)
	}
	b.h.settle(ctx, dear, 0.006)
	spent, _, err := b.h.reserve(ctx, jobOf("ReCaptchaV2Token"))
	require.NoError(t, err)
	require.True(t, spent, "0.004 left: a reCAPTCHA is held and its queue paused")

	ticks := func(n int) (resumes, held int) {
		for range n {
			wasPaused := b.rc.Exists(ctx, "asynq:{q}:paused").Val() == 1
			b.watcher.Check(ctx, "q")
			paused := b.rc.Exists(ctx, "asynq:{q}:paused").Val() == 1
			if wasPaused && !paused {
				resumes++
			}
			if paused {
				continue
			}
			spent, _, err := b.h.reserve(ctx, jobOf("ReCaptchaV2Token"))
			require.NoError(t, err)
			if spent {
				held++
			}
		}
		return resumes, held
	}
	resumes, held := ticks(10)
	require.Zero(t, resumes, "a sliver of room: the queue stays paused")
	require.Zero(t, held)

	b.h.settle(ctx, cheap, 0) // AnySolver refused the image task: 0.006 is room for one reCAPTCHA
	resumes, held = ticks(10)
	require.Equal(t, 1, resumes)
	require.Equal(t, 1, held, "the job after the one that fit is held, and the queue stays paused")
	u, err := b.ledger.Read(ctx, "q", *b.policy.Queue("q").Budget)
	require.NoError(t, err)
	require.InDelta(t, 0.012, u.Cost, 1e-9)
	require.True(t, u.Paused)
}
