// Package spend is the bench's spend section: createTask calls per job on an error mix, the
// policy against retrying everything.
package spend

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Spend: createTask calls per job on an error mix, through solvequeue with its default
// classification, and through a plain asynq handler that returns every error (asynq's default:
// retry it, 25 times). Both have their backoff shortened to 100 ms doubling up to 500 ms (200 ms
// in a quick run), and the plain server checks for due retries that often, so that the run
// takes seconds; the decisions are what is measured. The two run side by side,
// each with its own fake, which scripts every job through its websiteKey.

// mixEntry is one part of the error mix, per hundred jobs.
type mixEntry struct {
	per100    int
	directive string
}

// spendMix is the mix; every directive solves at once once its errors are used up.
// Its floor is 1.08 createTask per job: the first two kinds are retried once and then solved.
var spendMix = []mixEntry{
	{5, "create=SERVICE_UNAVAILABLE*1"},
	{3, "failed=CAPTCHA_UNSOLVABLE*1"},
	{5, "create=DOMAIN_BANNED*1000"},
	{5, "create=INVALID_SITEKEY*1000"},
	{2, "create=UNKNOWN_PROVIDER_ERROR*1000"},
	{80, ""}, // solved at once
}

// spendPolicy is the default classification with the backoff of the run.
func spendPolicy(backoff [2]time.Duration) []byte {
	return fmt.Appendf(nil, "retry:\n  maxRetries: 25\n  baseDelay: %s\n  maxDelay: %s\n", backoff[0], backoff[1])
}

const spendLimit = 3 * time.Minute

func mixKey(i int) string {
	slot := i % 100
	for _, m := range spendMix {
		if slot < m.per100 {
			return anysolvertest.DirectivePrefix + m.directive + ";solve=0s;id=" + strconv.Itoa(i)
		}
		slot -= m.per100
	}
	panic("the mix does not add up to 100")
}

// Run runs the spend section: createTask calls per job on an error mix, our policy against
// retry-all, and writes its figures to r.
func Run(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	r.Context.Sizes["mix_jobs"] = sz.MixJobs
	var (
		wg              sync.WaitGroup
		ours, retryAll  float64
		errOurs, errAll error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		ours, errOurs = spendOurs(ctx, e, sz, r)
	}()
	go func() {
		defer wg.Done()
		retryAll, errAll = spendRetryAll(ctx, e, sz)
	}()
	wg.Wait()
	if errOurs != nil {
		return fmt.Errorf("our policy: %w", errOurs)
	}
	if errAll != nil {
		return fmt.Errorf("retry-all: %w", errAll)
	}
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("spend: backoff %s doubling to %s for both; retry-all is the naive "+
		"handler on a plain asynq server (MaxRetry 25)", sz.MixBackoff[0], sz.MixBackoff[1]))
	r.CreatesPerJobMix = benchenv.Ptr(benchenv.Round(ours, 3))
	r.CreatesPerJobMixRetryAll = benchenv.Ptr(benchenv.Round(retryAll, 3))
	return nil
}

// mixFake is the fake of the mix: every job scripted through its websiteKey.
func mixFake() anysolvertest.Options {
	return anysolvertest.Options{Balance: 1e9, Script: anysolvertest.DirectiveScript(benchenv.ReadyAtOnce)}
}

// spendOurs runs the mix through a solvequeue worker and returns createTask calls per job.
func spendOurs(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) (float64, error) {
	policy, err := policyfile.Parse("bench-policy.yaml", spendPolicy(sz.MixBackoff))
	if err != nil {
		return 0, err
	}
	q := e.Queue("mix")
	// Dead jobs are logged as warnings by design; here they are the point, not news.
	p, err := benchenv.StartPipeline(ctx, e, mixFake().Script, worker.Config{Policy: policy, Queues: map[string]int{q: 1},
		Observer: worker.NewMetricsFor(prometheus.NewRegistry(), policy.Classification()), Logger: e.Logger(benchenv.SlogError)})
	if err != nil {
		return 0, err
	}
	defer p.Close()
	jobs := make([]enqueue.Job, sz.MixJobs)
	for i := range jobs {
		jobs[i] = benchenv.Job(q, mixKey(i))
	}
	results, err := p.Producer.SubmitMany(ctx, jobs, 0, nil)
	if err != nil {
		return 0, err
	}
	refs := make([]enqueue.JobRef, 0, len(results))
	for _, res := range results {
		if res.Err != nil {
			return 0, res.Err
		}
		refs = append(refs, enqueue.JobRef{ID: res.Submitted.ID, Queue: res.Submitted.Queue})
	}
	began := time.Now()
	if _, err := e.WaitDrained(ctx, q, 100*time.Millisecond, spendLimit, nil); err != nil {
		return 0, err
	}
	states := map[enqueue.State]int{}
	var mu sync.Mutex
	if err := p.Producer.WaitMany(ctx, refs, 32, func(_ enqueue.JobRef, out enqueue.Outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			states["unknown"]++
			return
		}
		states[out.State]++
	}); err != nil {
		return 0, err
	}
	for _, s := range []enqueue.State{enqueue.StateSolved, enqueue.StateFailed, enqueue.StateDead} {
		r.Context.Details["mix_jobs_"+string(s)] = float64(states[s])
	}
	creates := float64(p.Fake.Stats().Creates) / float64(sz.MixJobs)
	e.Logf("bench: [spend] our policy: %d jobs ended in %s (%d solved, %d failed, %d dead): %.3f createTask per job",
		sz.MixJobs, time.Since(began).Round(100*time.Millisecond), states[enqueue.StateSolved], states[enqueue.StateFailed],
		states[enqueue.StateDead], creates)
	return creates, nil
}

// spendRetryAll runs the mix through the naive handler on a plain asynq server, every error
// retried (asynq's MaxRetry default of 25), and returns createTask calls per job.
func spendRetryAll(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes) (float64, error) {
	fake, err := rig.StartFake(mixFake())
	if err != nil {
		return 0, err
	}
	defer fake.Close()
	opt, err := e.AsynqOpt()
	if err != nil {
		return 0, err
	}
	q := e.Queue("mix-retry-all")
	client := asynq.NewClient(opt)
	defer client.Close()
	if err := benchenv.Parallel(ctx, sz.MixJobs, benchenv.EnqueueConcurrency, func(i int) error {
		t, err := benchenv.NewNaiveTask(q, mixKey(i))
		if err != nil {
			return err
		}
		_, err = client.EnqueueContext(ctx, t)
		return err
	}); err != nil {
		return 0, err
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: 1000, Queues: map[string]int{q: 1},
		RetryDelayFunc: func(n int, _ error, _ *asynq.Task) time.Duration {
			return min(sz.MixBackoff[0]<<min(n, 10), sz.MixBackoff[1])
		},
		DelayedTaskCheckInterval: sz.MixBackoff[1] / 2, TaskCheckInterval: sz.MixBackoff[1] / 2,
		Logger: benchenv.AsynqLogger{Env: e}, LogLevel: asynq.WarnLevel})
	began := time.Now()
	if err := srv.Start(&benchenv.NaiveSolver{BaseURL: fake.URL, Key: benchenv.APIKey}); err != nil {
		return 0, err
	}
	_, err = e.WaitDrained(ctx, q, 100*time.Millisecond, spendLimit, nil)
	srv.Shutdown()
	if err != nil {
		return 0, err
	}
	creates := float64(fake.Stats().Creates) / float64(sz.MixJobs)
	e.Logf("bench: [spend] retry-all: %d jobs ended in %s: %.3f createTask per job", sz.MixJobs,
		time.Since(began).Round(100*time.Millisecond), creates)
	return creates, nil
}
