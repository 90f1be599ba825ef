package bench

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Throughput: the same jobs (a token task the fake solves in no time, so it is ready at the
// first poll) through three handlers at the same concurrency, each run on a fresh queue of the
// same Redis. The jobs are in the queue before the clock starts; the clock runs from the first
// job started to the queue drained (nothing pending or active: every job done and stored).
//
// The machine is shared and its load changes by the second, so the three runs go in rounds,
// floor, naive, e2e, floor, naive, e2e, and each figure is the best of its rounds: load only
// ever slows a run down.

// readyAtOnce is the fake's script for the throughput runs: ready at the first poll.
func readyAtOnce(anysolvertest.Task) anysolvertest.Behavior { return anysolvertest.Behavior{} }

// throughputRound bounds one run's wait for its queue to drain.
const throughputRound = 3 * time.Minute

// throughputRounds is how many times each of the three runs.
const throughputRounds = 3

func runThroughput(ctx context.Context, e *env, sz sizes, r *Report) error {
	r.Context.Sizes["throughput_jobs"] = sz.throughputJobs
	r.Context.Sizes["throughput_concurrency"] = sz.throughputConcurrency
	r.Context.Sizes["throughput_rounds"] = throughputRounds
	r.Context.Sizes["e2e_warmup_jobs"] = sz.e2eWarmup
	er, err := newE2ERig(ctx, e, sz, "e2e", false)
	if err != nil {
		return fmt.Errorf("e2e: %w", err)
	}
	defer er.Close()
	erb, err := newE2ERig(ctx, e, sz, "e2e-budget", true)
	if err != nil {
		return fmt.Errorf("e2e with a budget: %w", err)
	}
	defer erb.Close()
	var floor, naive, e2e, budgeted float64
	for round := 1; round <= throughputRounds; round++ {
		f, err := runPlainAsynq(ctx, e, sz, "floor", round, func(string) asynq.Handler {
			return asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })
		})
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		n, err := runPlainAsynq(ctx, e, sz, "naive", round, func(fakeURL string) asynq.Handler {
			return &naiveSolver{baseURL: fakeURL, key: apiKey}
		})
		if err != nil {
			return fmt.Errorf("naive: %w", err)
		}
		x, err := er.run(ctx, round)
		if err != nil {
			return fmt.Errorf("e2e: %w", err)
		}
		b, err := erb.run(ctx, round)
		if err != nil {
			return fmt.Errorf("e2e with a budget: %w", err)
		}
		for name, v := range map[string]float64{"floor": f, "naive": n, "e2e": x, "budget_e2e": b} {
			r.Context.Details[fmt.Sprintf("%s_jobs_per_s_round%d", name, round)] = round0(v)
		}
		floor, naive, e2e, budgeted = max(floor, f), max(naive, n), max(e2e, x), max(budgeted, b)
	}
	r.BudgetE2EJobsPerS, r.BudgetE2EVsPlain = ptr(round0(budgeted)), ratio(budgeted, e2e)
	st := er.Fake.Stats()
	r.Context.Details["e2e_polls_per_job"] = round(float64(st.GetTaskResult-sz.e2eWarmup)/float64(throughputRounds*sz.throughputJobs), 3)
	r.FloorJobsPerS, r.NaiveJobsPerS, r.E2EJobsPerS = ptr(round0(floor)), ptr(round0(naive)), ptr(round0(e2e))
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("throughput: %d jobs ready at the first poll, concurrency %d, each run on a fresh queue; "+
		"clock from the first job started to the queue drained; floor, naive and e2e alternate for %d rounds and each keeps its best; "+
		"e2e after a warm-up of %d jobs on its worker (the poller learns the type is ready at once), its worker logging at warn level",
		sz.throughputJobs, sz.throughputConcurrency, throughputRounds, sz.e2eWarmup))
	r.E2EVsNaive = ratio(e2e, naive)
	r.E2EVsFloor = ratio(e2e, floor)
	return nil
}

func round0(v float64) float64 { return round(v, 0) }

// runPlainAsynq runs the jobs through a plain asynq server with the handler made for the fake's
// URL and returns jobs per second.
func runPlainAsynq(ctx context.Context, e *env, sz sizes, name string, round int, handler func(fakeURL string) asynq.Handler) (rate float64, err error) {
	labeled(ctx, name, func(ctx context.Context) { rate, err = plainAsynq(ctx, e, sz, name, round, handler) })
	return rate, err
}

func plainAsynq(ctx context.Context, e *env, sz sizes, name string, round int, handler func(fakeURL string) asynq.Handler) (float64, error) {
	fake, err := rig.StartFake(anysolvertest.Options{Balance: 1e9, Script: readyAtOnce})
	if err != nil {
		return 0, err
	}
	defer fake.Close()
	opt, err := e.asynqOpt()
	if err != nil {
		return 0, err
	}
	q := e.queue(fmt.Sprintf("%s-%d", name, round))
	client := asynq.NewClient(opt)
	defer client.Close()
	err = parallel(ctx, sz.throughputJobs, enqueueConcurrency, func(i int) error {
		t, err := newNaiveTask(q, "bench-"+name+"-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		_, err = client.EnqueueContext(ctx, t)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	var first atomic.Int64
	h := handler(fake.URL)
	cpu := e.startCPU(ctx)
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: sz.throughputConcurrency, Queues: map[string]int{q: 1},
		Logger: asynqLogger{e}, LogLevel: asynq.WarnLevel})
	err = srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		first.CompareAndSwap(0, time.Now().UnixNano())
		return h.ProcessTask(ctx, t)
	}))
	if err != nil {
		return 0, err
	}
	end, err := e.waitDrained(ctx, q, 10*time.Millisecond, throughputRound, nil)
	srv.Shutdown()
	if err != nil {
		return 0, err
	}
	took := end.Sub(time.Unix(0, first.Load()))
	if name != "floor" && fake.Stats().Solved != sz.throughputJobs {
		return 0, fmt.Errorf("the fake solved %d tasks, want %d", fake.Stats().Solved, sz.throughputJobs)
	}
	rate := float64(sz.throughputJobs) / took.Seconds()
	goCPU, redisCPU := cpu.perJob(ctx, sz.throughputJobs)
	e.logf("bench: [throughput] round %d %-5s %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
		round, name, sz.throughputJobs, took.Round(time.Millisecond), rate, goCPU, redisCPU)
	e.cpuDetail(name, goCPU, redisCPU)
	if err := e.inspector.DeleteQueue(q, true); err != nil {
		return 0, err
	}
	return rate, nil
}

// e2eRig is solvequeue's whole pipeline for the throughput runs: jobs submitted with the
// producer client, solved by a worker as `solvequeue worker` builds it (its default Redis pool,
// metrics on). The worker first solves a warm-up batch on its queue, as a running worker would
// have: its poller learns that this task type is ready at once and polls it at once. Before each
// run the queue is emptied of finished tasks and paused while the measured jobs go in; the
// clock starts at the first createTask after the unpause.
type e2eRig struct {
	*rig.Pipeline
	e       *env
	sz      sizes
	queues  []string // the jobs are shared evenly among them
	name    string   // "e2e", "e2e-budget" for the run on a queue with a spend cap, "cluster-..." (cluster.go)
	section string   // the bench section it measures for, in its progress lines
	obs     *timingObserver
}

// newE2ERig starts the e2e pipeline on a queue of its own; with budgeted, that queue has a spend
// cap far above what the run spends, so every createTask is reserved and settled but none held.
func newE2ERig(ctx context.Context, e *env, sz sizes, name string, budgeted bool) (er *e2eRig, err error) {
	labeled(ctx, name, func(ctx context.Context) { er, err = startE2ERig(ctx, e, sz, name, budgeted) })
	return er, err
}

func startE2ERig(ctx context.Context, e *env, sz sizes, name string, budgeted bool) (*e2eRig, error) {
	q := e.queue(name)
	policy := policyfile.Default()
	if budgeted {
		var err error
		policy, err = policyfile.Parse("bench-budget.yaml", []byte(fmt.Sprintf(
			"queues:\n  %q:\n    budget: {window: 24h, maxCost: 1000000, maxCreateTasks: 1000000000, estimatedCost: 0.001}\n", q)))
		if err != nil {
			return nil, err
		}
	}
	return startE2ERigOn(ctx, e, sz, SectionThroughput, name, []string{q}, policy)
}

// startE2ERigOn starts the e2e pipeline on queues (each of weight 1) and runs its warm-up,
// logging as section.
func startE2ERigOn(ctx context.Context, e *env, sz sizes, section, name string, queues []string, policy *policyfile.Policy) (*e2eRig, error) {
	er := &e2eRig{e: e, sz: sz, queues: queues, name: name, section: section}
	er.obs = &timingObserver{Observer: worker.NewMetricsFor(prometheus.NewRegistry(), policy.Classification())}
	weights := make(map[string]int, len(queues))
	for _, q := range queues {
		weights[q] = 1
	}
	p, err := startPipeline(ctx, e, readyAtOnce, worker.Config{Queues: weights,
		Concurrency: sz.throughputConcurrency, Observer: er.obs, Policy: policy})
	if err != nil {
		return nil, err
	}
	er.Pipeline = p
	began := time.Now()
	if err := submitAll(ctx, er.Producer, er.jobs("bench-"+name+"-warm-", sz.e2eWarmup)); err != nil {
		_ = er.Close()
		return nil, err
	}
	if _, err := e.waitAllDrained(ctx, queues, 20*time.Millisecond, throughputRound); err != nil {
		_ = er.Close()
		return nil, err
	}
	e.logf("bench: [%s] %s warm-up: %d jobs in %s", section, name, sz.e2eWarmup, time.Since(began).Round(time.Millisecond))
	return er, nil
}

// jobs returns n jobs shared in turn among the rig's queues, their websiteKeys starting with prefix.
func (er *e2eRig) jobs(prefix string, n int) []enqueue.Job {
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = job(er.queues[i%len(er.queues)], prefix+strconv.Itoa(i))
	}
	return jobs
}

func (er *e2eRig) run(ctx context.Context, round int) (rate float64, err error) {
	labeled(ctx, er.name, func(ctx context.Context) { rate, err = er.measure(ctx, round) })
	return rate, err
}

func (er *e2eRig) measure(ctx context.Context, round int) (float64, error) {
	e, n := er.e, er.sz.throughputJobs
	for _, q := range er.queues {
		if _, err := e.inspector.DeleteAllCompletedTasks(q); err != nil {
			return 0, err
		}
		if err := e.inspector.PauseQueue(q); err != nil {
			return 0, err
		}
	}
	if err := submitAll(ctx, er.Producer, er.jobs(fmt.Sprintf("bench-%s-%d-", er.name, round), n)); err != nil {
		return 0, err
	}
	er.obs.arm()
	cpu := e.startCPU(ctx)
	for _, q := range er.queues {
		if err := e.inspector.UnpauseQueue(q); err != nil {
			return 0, err
		}
	}
	end, err := e.waitAllDrained(ctx, er.queues, 10*time.Millisecond, throughputRound)
	if err != nil {
		return 0, err
	}
	first, solved := er.obs.disarm()
	if solved != n {
		return 0, fmt.Errorf("%d jobs solved, want %d", solved, n)
	}
	took := end.Sub(first)
	rate := float64(n) / took.Seconds()
	goCPU, redisCPU := cpu.perJob(ctx, n)
	e.logf("bench: [%s] round %d %s   %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
		er.section, round, er.name, n, took.Round(time.Millisecond), rate, goCPU, redisCPU)
	e.cpuDetail(er.name, goCPU, redisCPU)
	return rate, nil
}

// timingObserver passes everything to the worker's metrics and, once armed, notes when the
// first createTask went out and how many jobs were solved.
type timingObserver struct {
	worker.Observer
	armed  atomic.Bool
	mu     sync.Mutex
	first  time.Time
	solved int
}

func (o *timingObserver) arm() { o.armed.Store(true) }

// disarm stops counting and returns what was seen since arm, resetting it.
func (o *timingObserver) disarm() (time.Time, int) {
	o.armed.Store(false)
	o.mu.Lock()
	defer o.mu.Unlock()
	first, solved := o.first, o.solved
	o.first, o.solved = time.Time{}, 0
	return first, solved
}

func (o *timingObserver) Called(method, outcome string, took time.Duration) {
	o.Observer.Called(method, outcome, took)
	if !o.armed.Load() {
		return
	}
	o.mu.Lock()
	if o.first.IsZero() {
		o.first = time.Now().Add(-took)
	}
	o.mu.Unlock()
}

func (o *timingObserver) JobEnded(end worker.JobEnd) {
	o.Observer.JobEnded(end)
	if !o.armed.Load() || end.State != enqueue.StateSolved {
		return
	}
	o.mu.Lock()
	o.solved++
	o.mu.Unlock()
}

// labeled runs fn with the pprof label bench=name, which the goroutines it starts inherit, so
// that a --cpuprofile can be cut by run: go tool pprof -tagfocus=bench=e2e.
func labeled(ctx context.Context, name string, fn func(context.Context)) {
	pprof.Do(ctx, pprof.Labels("bench", name), fn)
}

// makeJobs returns n jobs for queue whose websiteKeys start with prefix.
func makeJobs(queue, prefix string, n int) []enqueue.Job {
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = job(queue, prefix+strconv.Itoa(i))
	}
	return jobs
}

// submitAll submits jobs with SubmitMany and fails on the first job that did not go in.
func submitAll(ctx context.Context, c *enqueue.Client, jobs []enqueue.Job) error {
	return submitAllN(ctx, c, jobs, enqueueConcurrency)
}

func submitAllN(ctx context.Context, c *enqueue.Client, jobs []enqueue.Job, concurrency int) error {
	results, err := c.SubmitMany(ctx, jobs, concurrency, nil)
	if err != nil {
		return err
	}
	for _, res := range results {
		if res.Err != nil {
			return fmt.Errorf("submit job %d: %w", res.Index, res.Err)
		}
	}
	return nil
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
	var (
		next    atomic.Int64
		firstMu sync.Mutex
		first   error
		wg      sync.WaitGroup
	)
	for range min(workers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					firstMu.Lock()
					if first == nil {
						first = err
					}
					firstMu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}
