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
// SubmitJob at a time on the same client. Both start on an empty queue; the two alternate, twice,
// and each keeps its best round.

const submitRounds = 2

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
	var batch, seq float64
	for round := 1; round <= submitRounds; round++ {
		s, err := sequentialSubmit(ctx, e, producer, sz, round)
		if err != nil {
			return fmt.Errorf("sequential: %w", err)
		}
		if err := e.Reset(ctx); err != nil {
			return err
		}
		b, err := batchSubmit(ctx, e, producer, sz, round)
		if err != nil {
			return fmt.Errorf("batch: %w", err)
		}
		if err := e.Reset(ctx); err != nil {
			return err
		}
		r.Context.Details[fmt.Sprintf("submit_jobs_per_s_round%d", round)] = benchenv.Round0(b)
		r.Context.Details[fmt.Sprintf("sequential_submit_jobs_per_s_round%d", round)] = benchenv.Round0(s)
		batch, seq = max(batch, b), max(seq, s)
	}
	r.SubmitJobsPerS = benchenv.Ptr(benchenv.Round0(batch))
	r.SequentialSubmitJobsPerS = benchenv.Ptr(benchenv.Round0(seq))
	r.SubmitVsSequential = benchenv.Ratio(batch, seq)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("submit: SubmitMany with concurrency %d (asynq's own enqueues sharing "+
		"pipelined round trips through go-redis's autopipeliner) against SubmitJob one at a time; they alternate for %d rounds, each keeps its best",
		sz.SubmitConcurrency, submitRounds))
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
