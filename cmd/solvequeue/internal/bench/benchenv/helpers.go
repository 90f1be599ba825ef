package benchenv

import (
	"context"
	"fmt"
	"runtime/pprof"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// ReadyAtOnce is the fake's script for the throughput runs: ready at the first poll.
func ReadyAtOnce(anysolvertest.Task) anysolvertest.Behavior { return anysolvertest.Behavior{} }

// Labeled runs fn with the pprof label bench=name, which the goroutines it starts inherit, so
// that a --cpuprofile can be cut by run: go tool pprof -tagfocus=bench=e2e.
func Labeled(ctx context.Context, name string, fn func(context.Context)) {
	pprof.Do(ctx, pprof.Labels("bench", name), fn)
}

// MakeJobs returns n jobs for queue whose websiteKeys start with prefix.
func MakeJobs(queue, prefix string, n int) []enqueue.Job {
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = Job(queue, prefix+strconv.Itoa(i))
	}
	return jobs
}

// SubmitAll submits jobs with SubmitMany and fails on the first job that did not go in.
func SubmitAll(ctx context.Context, c *enqueue.Client, jobs []enqueue.Job) error {
	return SubmitAllN(ctx, c, jobs, EnqueueConcurrency)
}

// SubmitAllN is SubmitAll with concurrency round trips in flight.
func SubmitAllN(ctx context.Context, c *enqueue.Client, jobs []enqueue.Job, concurrency int) error {
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
func Parallel(ctx context.Context, n, workers int, fn func(i int) error) error {
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
