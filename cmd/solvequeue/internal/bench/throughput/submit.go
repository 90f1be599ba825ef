package throughput

import (
	"context"
	"fmt"
	"time"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/enqueue"
)

// Batch submit: SubmitMany, as `solvequeue batch` and the Go client use it (its default
// concurrency, a Redis pool that size plus a few, as the batch command opens it), against one
// SubmitJob at a time on the same client. Both start on an empty queue; the two alternate in
// rounds after a warm-up round (benchenv.Alternate): the rates are medians, the ratio the median
// of the per-round ratios.

// RunSubmit runs the submit section: batch submit against one job at a time, and writes its
// figures to r.
func RunSubmit(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	r.Context.Sizes["submit_jobs"] = sz.SubmitJobs
	r.Context.Sizes["sequential_submit_jobs"] = sz.SequentialJobs
	r.Context.Sizes["submit_concurrency"] = sz.SubmitConcurrency
	prc, err := e.OpenRedis(ctx, sz.SubmitConcurrency+8)
	if err != nil {
		return err
	}
	defer prc.Close()
	producer, err := enqueue.NewClient(enqueue.Config{Redis: prc})
	if err != nil {
		return err
	}
	side := func(name string, run func(context.Context, *benchenv.Env, *enqueue.Client, benchenv.Sizes, int) (float64, error)) benchenv.Side {
		return benchenv.Side{Name: name, Run: func(ctx context.Context, round int) (float64, error) {
			rate, err := run(ctx, e, producer, sz, round)
			if err != nil {
				return 0, err
			}
			return rate, e.Reset(ctx)
		}}
	}
	rounds, err := e.Alternate(ctx, benchenv.RoundsConfig{Section: benchenv.SectionSubmit, Warmup: sz.WarmupRounds, Measured: sz.Rounds},
		side("one at a time", sequentialSubmit), side("SubmitMany", batchSubmit))
	if err != nil {
		return err
	}
	seq, batch := rounds[0], rounds[1]
	benchenv.RoundDetails(r.Context.Details, "submit_jobs_per_s", batch, 0)
	benchenv.RoundDetails(r.Context.Details, "sequential_submit_jobs_per_s", seq, 0)
	r.SubmitJobsPerS = benchenv.SpreadOf(batch).Rounded(0)
	r.SequentialSubmitJobsPerS = benchenv.SpreadOf(seq).Rounded(0)
	r.SubmitVsSequential, r.SubmitVsSequentialMin, r.SubmitVsSequentialMax = benchenv.RatioSpread(batch, seq).Ptrs(3)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("submit: SubmitMany with concurrency %d (asynq's own enqueues sharing "+
		"pipelined round trips through go-redis's autopipeliner) against SubmitJob one at a time; they alternate for %d warm-up and %d measured rounds: medians, "+
		"and the ratio is the median of the per-round ratios", sz.SubmitConcurrency, sz.WarmupRounds, sz.Rounds))
	return nil
}

func batchSubmit(ctx context.Context, e *benchenv.Env, producer *enqueue.Client, sz benchenv.Sizes, round int) (rate float64, err error) {
	benchenv.Labeled(ctx, "submit", func(ctx context.Context) {
		q := e.Queue(fmt.Sprintf("submit-batch-%d", round))
		jobs := benchenv.MakeJobs(q, "bench-submit-", sz.SubmitJobs)
		cpu := e.StartCPU(ctx)
		began := time.Now()
		if err = benchenv.SubmitAllN(ctx, producer, jobs, sz.SubmitConcurrency); err != nil {
			return
		}
		took := time.Since(began)
		rate = float64(len(jobs)) / took.Seconds()
		goCPU, redisCPU := cpu.PerJob(ctx, len(jobs))
		e.CPUDetail("submit", goCPU, redisCPU)
		e.Logf("bench: [submit] round %d SubmitMany: %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
			round, len(jobs), took.Round(time.Millisecond), rate, goCPU, redisCPU)
	})
	return rate, err
}

func sequentialSubmit(ctx context.Context, e *benchenv.Env, producer *enqueue.Client, sz benchenv.Sizes, round int) (rate float64, err error) {
	benchenv.Labeled(ctx, "sequential", func(ctx context.Context) {
		q := e.Queue(fmt.Sprintf("submit-seq-%d", round))
		jobs := benchenv.MakeJobs(q, "bench-seq-", sz.SequentialJobs)
		cpu := e.StartCPU(ctx)
		began := time.Now()
		for _, j := range jobs {
			if _, err = producer.SubmitJob(ctx, j); err != nil {
				return
			}
		}
		took := time.Since(began)
		rate = float64(len(jobs)) / took.Seconds()
		goCPU, redisCPU := cpu.PerJob(ctx, len(jobs))
		e.CPUDetail("sequential_submit", goCPU, redisCPU)
		e.Logf("bench: [submit] round %d one at a time: %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
			round, len(jobs), took.Round(time.Millisecond), rate, goCPU, redisCPU)
	})
	return rate, err
}
