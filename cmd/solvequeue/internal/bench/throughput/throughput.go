// Package throughput is the bench's throughput sections: jobs per second through a no-op asynq
// handler, a hand-written one and the whole pipeline (also on a Redis Cluster), and batch submit.
package throughput

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
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

// Throughput: the same jobs (a token task the fake solves in no time, so it is ready at the
// first poll) through three handlers at the same concurrency, each run on a fresh queue of the
// same Redis. The jobs are in the queue before the clock starts; the clock runs from the first
// job started to the queue drained (nothing pending or active: every job done and stored).
//
// The machine is shared and its load changes by the second, so the runs alternate in mirrored
// rounds (floor, naive, e2e, e2e with a spend cap, then the same in reverse, each run half of the
// round's jobs; benchenv.Alternate) after a warm-up round: a side's rate for a round is its two
// runs' jobs over their time, each rate is the median of its rounds, each ratio the median of its
// per-round ratios.

// throughputRound bounds one run's wait for its queue to drain.
const throughputRound = 3 * time.Minute

// Run runs the throughput section: floor, naive and e2e in rounds, and writes its figures to r.
func Run(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	r.Context.Sizes["throughput_jobs"] = sz.ThroughputJobs
	r.Context.Sizes["throughput_concurrency"] = sz.ThroughputConcurrency
	r.Context.Sizes["throughput_rounds"] = sz.Rounds
	r.Context.Sizes["e2e_warmup_jobs"] = sz.E2eWarmup
	// Mirrored rounds (floor naive e2e budget, then budget e2e naive floor): each run does
	// half of the round's jobs.
	sz.ThroughputJobs /= 2
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
	polls0 := er.Fake.Stats().GetTaskResult
	var stopping sync.WaitGroup // the baseline servers shutting down (runPlainAsynq)
	defer stopping.Wait()
	plain := func(name string, handler func(fakeURL string) asynq.Handler) benchenv.Side {
		return benchenv.Side{Name: name, Run: func(ctx context.Context, run int) (float64, error) {
			return runPlainAsynq(ctx, e, sz, name, run, handler, &stopping)
		}}
	}
	rounds, err := e.Alternate(ctx, benchenv.RoundsConfig{Section: benchenv.SectionThroughput, Warmup: sz.WarmupRounds, Measured: sz.Rounds,
		Mirror: benchenv.EqualWorkRate},
		plain("floor", func(string) asynq.Handler {
			return asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })
		}),
		plain("naive", func(fakeURL string) asynq.Handler {
			return &benchenv.NaiveSolver{BaseURL: fakeURL, Key: benchenv.APIKey}
		}),
		benchenv.Side{Name: "e2e", Run: er.run},
		benchenv.Side{Name: "budget_e2e", Run: erb.run},
	)
	if err != nil {
		return err
	}
	floor, naive, e2e, budgeted := rounds[0], rounds[1], rounds[2], rounds[3]
	for i, name := range []string{"floor", "naive", "e2e", "budget_e2e"} {
		benchenv.RoundDetails(r.Context.Details, name+"_jobs_per_s", rounds[i], 0)
	}
	r.FloorJobsPerS = benchenv.SpreadOf(floor).Rounded(0)
	r.NaiveJobsPerS = benchenv.SpreadOf(naive).Rounded(0)
	r.E2EJobsPerS = benchenv.SpreadOf(e2e).Rounded(0)
	r.BudgetE2EJobsPerS = benchenv.SpreadOf(budgeted).Rounded(0)
	r.E2EVsNaive, r.E2EVsNaiveMin, r.E2EVsNaiveMax = benchenv.RatioSpread(e2e, naive).Ptrs(3)
	r.E2EVsFloor, r.E2EVsFloorMin, r.E2EVsFloorMax = benchenv.RatioSpread(e2e, floor).Ptrs(3)
	r.BudgetE2EVsPlain, r.BudgetE2EVsPlainMin, r.BudgetE2EVsPlainMax = benchenv.RatioSpread(budgeted, e2e).Ptrs(3)
	st := er.Fake.Stats()
	r.Context.Details["e2e_polls_per_job"] = benchenv.Round(float64(st.GetTaskResult-polls0)/float64(2*(sz.WarmupRounds+sz.Rounds)*sz.ThroughputJobs), 3)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("throughput: %d jobs ready at the first poll per run, concurrency %d, each run on a fresh queue; "+
		"clock from the first job started to the queue drained; floor, naive, e2e and e2e with a spend cap alternate for %d warm-up and %d measured rounds, "+
		"each round mirrored (the four in order, then in reverse) and a side's rate for the round its two runs' jobs over their time: "+
		"each rate is the median of its rounds, each ratio the median of the per-round ratios; "+
		"e2e after a warm-up of %d jobs on its worker (the poller learns the type is ready at once), its worker logging at warn level",
		sz.ThroughputJobs, sz.ThroughputConcurrency, sz.WarmupRounds, sz.Rounds, sz.E2eWarmup))
	return nil
}

// runPlainAsynq runs the jobs through a plain asynq server with the handler made for the fake's
// URL and returns jobs per second. The server's shutdown, and its queue's deletion, go on in the
// background (stopping) once the run returns, measured or failed: an asynq server that found its queues empty
// sleeps up to 1.5 s before it looks again (its TaskCheckInterval, kept at asynq's default here
// as a hand-written worker would have it), and Shutdown waits for that sleep.
func runPlainAsynq(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, name string, run int, handler func(fakeURL string) asynq.Handler, stopping *sync.WaitGroup) (rate float64, err error) {
	benchenv.Labeled(ctx, name, func(ctx context.Context) { rate, err = plainAsynq(ctx, e, sz, name, run, handler, stopping) })
	return rate, err
}

func plainAsynq(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, name string, run int, handler func(fakeURL string) asynq.Handler, stopping *sync.WaitGroup) (float64, error) {
	fake, err := rig.StartFake(anysolvertest.Options{Balance: 1e9, Script: benchenv.ReadyAtOnce})
	if err != nil {
		return 0, err
	}
	cleanUp := fake.Close // what the run leaves to undo, once it returns
	defer func() { cleanUp() }()
	opt, err := e.AsynqOpt()
	if err != nil {
		return 0, err
	}
	q := e.Queue(fmt.Sprintf("%s-%d", name, run))
	client := asynq.NewClient(opt)
	defer client.Close()
	err = benchenv.Parallel(ctx, sz.ThroughputJobs, benchenv.EnqueueConcurrency, func(i int) error {
		t, err := benchenv.NewNaiveTask(q, "bench-"+name+"-"+strconv.Itoa(i))
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
	cpu := e.StartCPU(ctx)
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: sz.ThroughputConcurrency, Queues: map[string]int{q: 1},
		Logger: benchenv.AsynqLogger{Env: e}, LogLevel: asynq.WarnLevel})
	err = srv.Start(asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		first.CompareAndSwap(0, time.Now().UnixNano())
		return h.ProcessTask(ctx, t)
	}))
	if err != nil {
		return 0, err
	}
	cleanUp = func() {
		stopping.Go(func() {
			srv.Shutdown()
			fake.Close()
			if err := e.Inspector.DeleteQueue(q, true); err != nil {
				e.Logf("bench: [throughput] could not delete queue %s after its run: %v", q, err)
			}
		})
	}
	end, err := e.WaitDrained(ctx, q, 10*time.Millisecond, throughputRound, nil)
	if err != nil {
		return 0, err
	}
	took := end.Sub(time.Unix(0, first.Load()))
	if name != "floor" && fake.Stats().Solved != sz.ThroughputJobs {
		return 0, fmt.Errorf("the fake solved %d tasks, want %d", fake.Stats().Solved, sz.ThroughputJobs)
	}
	rate := float64(sz.ThroughputJobs) / took.Seconds()
	goCPU, redisCPU := cpu.PerJob(ctx, sz.ThroughputJobs)
	cpu.CallsDetail(ctx, name, sz.ThroughputJobs)
	e.Logf("bench: [throughput] run %d %-5s %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
		run, name, sz.ThroughputJobs, took.Round(time.Millisecond), rate, goCPU, redisCPU)
	e.CPUDetail(name, goCPU, redisCPU)
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
	e       *benchenv.Env
	sz      benchenv.Sizes
	queues  []string // the jobs are shared evenly among them
	name    string   // "e2e", "e2e-budget" for the run on a queue with a spend cap, "cluster-..." (cluster.go)
	section string   // the bench section it measures for, in its progress lines
	obs     *timingObserver
}

// newE2ERig starts the e2e pipeline on a queue of its own; with budgeted, that queue has a spend
// cap far above what the run spends, so every createTask is reserved and settled but none held.
func newE2ERig(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, name string, budgeted bool) (er *e2eRig, err error) {
	benchenv.Labeled(ctx, name, func(ctx context.Context) { er, err = startE2ERig(ctx, e, sz, name, budgeted) })
	return er, err
}

func startE2ERig(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, name string, budgeted bool) (*e2eRig, error) {
	q := e.Queue(name)
	policy := policyfile.Default()
	if budgeted {
		var err error
		policy, err = policyfile.Parse("bench-budget.yaml", []byte(fmt.Sprintf(
			"queues:\n  %q:\n    budget: {window: 24h, maxCost: 1000000, maxCreateTasks: 1000000000, estimatedCost: 0.001}\n", q)))
		if err != nil {
			return nil, err
		}
	}
	return startE2ERigOn(ctx, e, sz, benchenv.SectionThroughput, name, []string{q}, policy)
}

// startE2ERigOn starts the e2e pipeline on queues (each of weight 1) and runs its warm-up,
// logging as section.
func startE2ERigOn(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, section, name string, queues []string, policy *policyfile.Policy) (*e2eRig, error) {
	er := &e2eRig{e: e, sz: sz, queues: queues, name: name, section: section}
	er.obs = &timingObserver{Observer: worker.NewMetricsFor(prometheus.NewRegistry(), policy.Classification())}
	weights := make(map[string]int, len(queues))
	for _, q := range queues {
		weights[q] = 1
	}
	p, err := benchenv.StartPipeline(ctx, e, benchenv.ReadyAtOnce, worker.Config{Queues: weights,
		Concurrency: sz.ThroughputConcurrency, Observer: er.obs, Policy: policy})
	if err != nil {
		return nil, err
	}
	er.Pipeline = p
	began := time.Now()
	if err := benchenv.SubmitAll(ctx, er.Producer, er.jobs("bench-"+name+"-warm-", sz.E2eWarmup)); err != nil {
		_ = er.Close()
		return nil, err
	}
	if _, err := e.WaitAllDrained(ctx, queues, 20*time.Millisecond, throughputRound); err != nil {
		_ = er.Close()
		return nil, err
	}
	e.Logf("bench: [%s] %s warm-up: %d jobs in %s", section, name, sz.E2eWarmup, time.Since(began).Round(time.Millisecond))
	return er, nil
}

// jobs returns n jobs shared in turn among the rig's queues, their websiteKeys starting with prefix.
func (er *e2eRig) jobs(prefix string, n int) []enqueue.Job {
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = benchenv.Job(er.queues[i%len(er.queues)], prefix+strconv.Itoa(i))
	}
	return jobs
}

// run is the rig's benchenv.Side.Run: run n of its side (n names the run's jobs), under the
// rig's profile label; it returns jobs per second.
func (er *e2eRig) run(ctx context.Context, n int) (rate float64, err error) {
	benchenv.Labeled(ctx, er.name, func(ctx context.Context) { rate, err = er.measure(ctx, n) })
	return rate, err
}

func (er *e2eRig) measure(ctx context.Context, run int) (float64, error) {
	e, n := er.e, er.sz.ThroughputJobs
	for _, q := range er.queues {
		if _, err := e.Inspector.DeleteAllCompletedTasks(q); err != nil {
			return 0, err
		}
		if err := e.Inspector.PauseQueue(q); err != nil {
			return 0, err
		}
	}
	if err := benchenv.SubmitAll(ctx, er.Producer, er.jobs(fmt.Sprintf("bench-%s-%d-", er.name, run), n)); err != nil {
		return 0, err
	}
	er.obs.arm()
	cpu := e.StartCPU(ctx)
	for _, q := range er.queues {
		if err := e.Inspector.UnpauseQueue(q); err != nil {
			return 0, err
		}
	}
	end, err := e.WaitAllDrained(ctx, er.queues, 10*time.Millisecond, throughputRound)
	if err != nil {
		return 0, err
	}
	first, solved := er.obs.disarm()
	if solved != n {
		return 0, fmt.Errorf("%d jobs solved, want %d", solved, n)
	}
	took := end.Sub(first)
	rate := float64(n) / took.Seconds()
	goCPU, redisCPU := cpu.PerJob(ctx, n)
	cpu.CallsDetail(ctx, er.name, n)
	e.Logf("bench: [%s] run %d %s   %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
		er.section, run, er.name, n, took.Round(time.Millisecond), rate, goCPU, redisCPU)
	e.CPUDetail(er.name, goCPU, redisCPU)
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
