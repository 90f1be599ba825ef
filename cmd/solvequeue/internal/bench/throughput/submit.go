package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
)

// Batch submit: SubmitMany, as `solvequeue batch` and the Go client use it (its default
// concurrency, a Redis pool that size plus a few, as the batch command opens it), against one
// SubmitJob at a time on the same client. Both start on an empty queue; the two alternate, twice,
// and each keeps its best round.

const submitRounds = 2

func runSubmit(ctx context.Context, e *env, sz sizes, r *Report) error {
	r.Context.Sizes["submit_jobs"] = sz.submitJobs
	r.Context.Sizes["sequential_submit_jobs"] = sz.sequentialJobs
	r.Context.Sizes["submit_concurrency"] = sz.submitConcurrency
	prc, err := e.openRedis(ctx, sz.submitConcurrency+8)
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
		if err := e.reset(ctx); err != nil {
			return err
		}
		b, err := batchSubmit(ctx, e, producer, sz, round)
		if err != nil {
			return fmt.Errorf("batch: %w", err)
		}
		if err := e.reset(ctx); err != nil {
			return err
		}
		r.Context.Details[fmt.Sprintf("submit_jobs_per_s_round%d", round)] = round0(b)
		r.Context.Details[fmt.Sprintf("sequential_submit_jobs_per_s_round%d", round)] = round0(s)
		batch, seq = max(batch, b), max(seq, s)
	}
	r.SubmitJobsPerS = ptr(round0(batch))
	r.SequentialSubmitJobsPerS = ptr(round0(seq))
	r.SubmitVsSequential = ratio(batch, seq)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("submit: SubmitMany with concurrency %d (asynq's own enqueues sharing "+
		"pipelined round trips through go-redis's autopipeliner) against SubmitJob one at a time; they alternate for %d rounds, each keeps its best",
		sz.submitConcurrency, submitRounds))
	return nil
}

func batchSubmit(ctx context.Context, e *env, producer *enqueue.Client, sz sizes, round int) (rate float64, err error) {
	labeled(ctx, "submit", func(ctx context.Context) {
		q := e.queue(fmt.Sprintf("submit-batch-%d", round))
		jobs := makeJobs(q, "bench-submit-", sz.submitJobs)
		cpu := e.startCPU(ctx)
		began := time.Now()
		if err = submitAllN(ctx, producer, jobs, sz.submitConcurrency); err != nil {
			return
		}
		took := time.Since(began)
		rate = float64(len(jobs)) / took.Seconds()
		goCPU, redisCPU := cpu.perJob(ctx, len(jobs))
		e.cpuDetail("submit", goCPU, redisCPU)
		e.logf("bench: [submit] round %d SubmitMany: %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
			round, len(jobs), took.Round(time.Millisecond), rate, goCPU, redisCPU)
	})
	return rate, err
}

func sequentialSubmit(ctx context.Context, e *env, producer *enqueue.Client, sz sizes, round int) (rate float64, err error) {
	labeled(ctx, "sequential", func(ctx context.Context) {
		q := e.queue(fmt.Sprintf("submit-seq-%d", round))
		jobs := makeJobs(q, "bench-seq-", sz.sequentialJobs)
		cpu := e.startCPU(ctx)
		began := time.Now()
		for _, j := range jobs {
			if _, err = producer.SubmitJob(ctx, j); err != nil {
				return
			}
		}
		took := time.Since(began)
		rate = float64(len(jobs)) / took.Seconds()
		goCPU, redisCPU := cpu.perJob(ctx, len(jobs))
		e.cpuDetail("sequential_submit", goCPU, redisCPU)
		e.logf("bench: [submit] round %d one at a time: %d jobs in %s: %.0f jobs/s (CPU per job: %.0f µs here, %.0f µs Redis)",
			round, len(jobs), took.Round(time.Millisecond), rate, goCPU, redisCPU)
	})
	return rate, err
}
