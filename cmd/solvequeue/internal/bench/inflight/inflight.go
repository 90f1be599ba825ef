// Package inflight is the bench's in-flight section: a worker process holding thousands of long
// jobs, its wall time and peak memory beside plain asynq's floor worker (RunFloorWorker).
package inflight

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// In flight: many jobs that each take a long time at the fake, all at once, in one worker
// process: `solvequeue worker` run as a child with its default settings but the concurrency,
// so that its memory is its own. Wall time runs from the first submit to the last outcome
// recorded (the latest FinishedAt); peak RSS is the child's high-water mark (VmHWM in
// /proc/PID/status, read before it is stopped; getrusage's ru_maxrss where /proc is missing).
// Then the floor: the same number of plain asynq jobs held by a plain asynq server in a child
// process of its own (floor.go), at the same concurrency, each sleeping the solve time.
//
// The two alternate in rounds (benchenv.Alternate), each round with fresh child processes and
// fresh queues: a peak RSS is a process's high-water mark, so a process measures one round only,
// and a process started fresh is what both sides are, which keeps the floor a fair comparison.
// There is no warm-up round: a warm process is not what is measured. The figures are medians;
// the ratio is the median of the per-round ratios of the two peaks.
//
// SOLVEQUEUE_PPROF=127.0.0.1:6060 in the bench's environment reaches the worker child (its
// --pprof), so that its heap and goroutines can be profiled while the jobs are in flight.

const inflightLimit = 5 * time.Minute

// workerRound is what one round of the worker side measured.
type workerRound struct {
	peakMB          float64
	wall, submitted time.Duration
}

// Run runs the in-flight section: many long jobs held by one worker process, beside plain
// asynq holding as many (the floor), in alternating rounds, and writes its figures to r.
func Run(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	r.Context.Sizes["inflight_concurrency"] = sz.InflightConcurrency
	r.Context.Sizes["inflight_rounds"] = sz.Rounds
	r.Context.InflightRSS = "peak RSS (VmHWM) of a child `solvequeue worker` process, a fresh one per round: default settings, --concurrency " +
		strconv.Itoa(sz.InflightConcurrency) + ", info-level JSON logs to a pipe"
	solve := sz.InflightSolve
	fake, err := rig.StartFake(anysolvertest.Options{Balance: 1e9, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{SolveTime: solve}
	}})
	if err != nil {
		return err
	}
	defer fake.Close()
	prc, err := e.OpenRedis(ctx, benchenv.EnqueueConcurrency+8)
	if err != nil {
		return err
	}
	defer prc.Close()
	producer, err := enqueue.NewClient(enqueue.Config{Redis: prc})
	if err != nil {
		return err
	}
	var (
		ours        []workerRound
		floorWalls  []float64
		pollsBefore = fake.Stats().GetTaskResult
	)
	rounds, err := e.Alternate(ctx, benchenv.RoundsConfig{Section: benchenv.SectionInflight, Measured: sz.Rounds},
		benchenv.Side{Name: "worker peak RSS MB", Run: func(ctx context.Context, round int) (float64, error) {
			w, err := runWorkerRound(ctx, e, sz, fake, producer, round)
			ours = append(ours, w)
			return w.peakMB, err
		}},
		benchenv.Side{Name: "floor peak RSS MB", Run: func(ctx context.Context, round int) (float64, error) {
			peak, wall, err := runInflightFloor(ctx, e, sz, round)
			floorWalls = append(floorWalls, wall.Seconds())
			return peak, err
		}})
	if err != nil {
		return err
	}
	peaks, floorPeaks := rounds[0], rounds[1]
	walls, submits := make([]float64, len(ours)), make([]float64, len(ours))
	for i, w := range ours {
		walls[i], submits[i] = w.wall.Seconds(), w.submitted.Seconds()
	}
	r.InflightJobs = benchenv.Ptr(float64(sz.InflightJobs))
	r.InflightSolveS = benchenv.Ptr(solve.Seconds())
	r.InflightWallS = benchenv.SpreadOf(walls).Rounded(1)
	r.InflightPeakRSSMB = benchenv.SpreadOf(peaks).Rounded(0)
	r.InflightFloorRSSMB = benchenv.SpreadOf(floorPeaks).Rounded(0)
	r.InflightRSSVsFloor, r.InflightRSSVsFloorMin, r.InflightRSSVsFloorMax = benchenv.RatioSpread(peaks, floorPeaks).Ptrs(3)
	benchenv.RoundDetails(r.Context.Details, "inflight_peak_rss_mb", peaks, 0)
	benchenv.RoundDetails(r.Context.Details, "inflight_floor_rss_mb", floorPeaks, 0)
	benchenv.SpreadOf(walls).Detail(r.Context.Details, "inflight_wall_s", 1)
	benchenv.SpreadOf(floorWalls).Detail(r.Context.Details, "inflight_floor_wall_s", 1)
	r.Context.Details["inflight_submit_s"] = benchenv.Round(benchenv.SpreadOf(submits).Median, 2)
	polls := fake.Stats().GetTaskResult - pollsBefore
	r.Context.Details["inflight_polls_per_job"] = benchenv.Round(float64(polls)/float64(sz.Rounds*sz.InflightJobs), 2)
	return nil
}

// runWorkerRound holds the jobs in flight in a fresh `solvequeue worker` child process on a
// fresh queue, waits for every outcome, and returns the child's peak RSS and the wall time.
func runWorkerRound(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, fake *rig.Fake, producer *enqueue.Client, round int) (workerRound, error) {
	q := e.Queue(fmt.Sprintf("inflight-%d", round))
	child, err := startWorkerProcess(ctx, e, q, fake.URL, sz.InflightConcurrency)
	if err != nil {
		return workerRound{}, err
	}
	defer child.Stop()
	jobs := benchenv.MakeJobs(q, fmt.Sprintf("bench-inflight-%d-", round), sz.InflightJobs)
	began := time.Now()
	results, err := producer.SubmitMany(ctx, jobs, benchenv.EnqueueConcurrency, nil)
	if err != nil {
		return workerRound{}, err
	}
	submitted := time.Since(began)
	refs := make([]enqueue.JobRef, 0, len(results))
	for _, res := range results {
		if res.Err != nil {
			return workerRound{}, fmt.Errorf("submit: %w", res.Err)
		}
		refs = append(refs, enqueue.JobRef{ID: res.Submitted.ID, Queue: res.Submitted.Queue})
	}
	e.Logf("bench: [inflight] round %d: %d jobs of %s each submitted in %s", round, len(refs), sz.InflightSolve, submitted.Round(time.Millisecond))
	if _, err := e.WaitDrained(ctx, q, 100*time.Millisecond, inflightLimit, func(left int64) {
		st := fake.Stats()
		e.Logf("bench: [inflight] round %d %5.1fs: %d jobs not done, %d remote tasks in flight, worker RSS %.0f MB",
			round, time.Since(began).Seconds(), left, st.InFlight, child.RSSMB())
	}); err != nil {
		return workerRound{}, fmt.Errorf("%w\n%s", err, child.Tail())
	}
	peak, how := child.PeakRSSMB()
	child.Stop()

	var (
		mu     sync.Mutex
		last   time.Time
		states = map[enqueue.State]int{}
	)
	err = producer.WaitMany(ctx, refs, 64, func(_ enqueue.JobRef, out enqueue.Outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			states["unknown"]++
			return
		}
		states[out.State]++
		if out.FinishedAt.After(last) {
			last = out.FinishedAt
		}
	})
	if err != nil {
		return workerRound{}, err
	}
	if states[enqueue.StateSolved] != len(refs) {
		return workerRound{}, fmt.Errorf("not every job was solved: %v\n%s", states, child.Tail())
	}
	wall := last.Sub(began)
	e.Logf("bench: [inflight] round %d: %d jobs of %s: last outcome %.1f s after the first submit; peak RSS %.0f MB (%s)",
		round, len(refs), sz.InflightSolve, wall.Seconds(), peak, how)
	if err := e.Inspector.DeleteQueue(q, true); err != nil {
		return workerRound{}, fmt.Errorf("delete the round's queue: %w", err)
	}
	return workerRound{peakMB: peak, wall: wall, submitted: submitted}, nil
}

// runInflightFloor holds the same jobs in flight in plain asynq (floor.go): a fresh child process
// at the same concurrency, on a fresh queue, whose handler sleeps the solve time. It returns its
// peak RSS in MB and the wall time from the first enqueue until the queue drained (seen every
// 100 ms).
func runInflightFloor(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, round int) (float64, time.Duration, error) {
	q := e.Queue(fmt.Sprintf("inflight-floor-%d", round))
	child, err := startFloorProcess(ctx, e, q, sz.InflightConcurrency, sz.InflightSolve)
	if err != nil {
		return 0, 0, err
	}
	defer child.Stop()
	opt, err := e.AsynqOpt()
	if err != nil {
		return 0, 0, err
	}
	client := asynq.NewClient(opt)
	defer client.Close()
	began := time.Now()
	err = benchenv.Parallel(ctx, sz.InflightJobs, benchenv.EnqueueConcurrency, func(i int) error {
		t, err := benchenv.NewNaiveTask(q, "bench-inflight-floor-"+strconv.Itoa(round)+"-"+strconv.Itoa(i))
		if err != nil {
			return err
		}
		_, err = client.EnqueueContext(ctx, t)
		return err
	})
	if err != nil {
		return 0, 0, fmt.Errorf("enqueue: %w", err)
	}
	e.Logf("bench: [inflight] round %d floor: %d plain asynq jobs enqueued in %s", round, sz.InflightJobs, time.Since(began).Round(time.Millisecond))
	end, err := e.WaitDrained(ctx, q, 100*time.Millisecond, inflightLimit, func(left int64) {
		e.Logf("bench: [inflight] round %d floor %5.1fs: %d jobs not done, RSS %.0f MB", round, time.Since(began).Seconds(), left, child.RSSMB())
	})
	if err != nil {
		return 0, 0, fmt.Errorf("%w\n%s", err, child.Tail())
	}
	peak, how := child.PeakRSSMB()
	child.Stop()
	info, err := e.Inspector.GetQueueInfo(q)
	if err != nil {
		return 0, 0, err
	}
	if info.Completed != sz.InflightJobs {
		return 0, 0, fmt.Errorf("%d plain asynq jobs completed, want %d (%d archived)\n%s", info.Completed, sz.InflightJobs, info.Archived, child.Tail())
	}
	wall := end.Sub(began)
	e.Logf("bench: [inflight] round %d floor: %d jobs of %s: drained %.1f s after the first enqueue; peak RSS %.0f MB (%s)",
		round, sz.InflightJobs, sz.InflightSolve, wall.Seconds(), peak, how)
	if err := e.Inspector.DeleteQueue(q, true); err != nil {
		return 0, 0, fmt.Errorf("delete the round's queue: %w", err)
	}
	return peak, wall, nil
}

func startWorkerProcess(ctx context.Context, e *benchenv.Env, queue, fakeURL string, concurrency int) (*benchenv.Child, error) {
	child, _, err := e.StartChild(ctx, benchenv.ChildConfig{Name: "worker", KeepPprof: true,
		Args: []string{"worker", "--concurrency", strconv.Itoa(concurrency), "--queues", queue + "=1"},
		Env:  []string{"ANYSOLVER_URL=" + fakeURL, "ANYSOLVER_API_KEY=" + benchenv.APIKey}, Ready: benchenv.LineHas("worker started")})
	return child, err
}

// startFloorProcess starts the in-flight floor (floor.go) as a child process of the same binary.
func startFloorProcess(ctx context.Context, e *benchenv.Env, queue string, concurrency int, sleep time.Duration) (*benchenv.Child, error) {
	child, _, err := e.StartChild(ctx, benchenv.ChildConfig{Name: "floor worker", KeepPprof: true,
		Args:  []string{"bench", "floor-worker", "--queue", queue, "--concurrency", strconv.Itoa(concurrency), "--sleep", sleep.String()},
		Ready: benchenv.LineHas(FloorWorkerStarted)})
	return child, err
}
