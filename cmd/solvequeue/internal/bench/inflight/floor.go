package inflight

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
)

// The in-flight floor: what plain asynq costs to hold the same jobs in flight. A child process of
// its own (`solvequeue bench floor-worker`, hidden), so that its peak RSS is its own as the
// worker's is: an asynq server on the same Redis, at the same concurrency, whose handler only
// sleeps the solve time. It runs with Go's default garbage collector settings, as a plain asynq
// program would.

// FloorWorkerStarted is the line a floor worker writes to its log once it takes jobs.
const FloorWorkerStarted = "floor worker started"

// FloorWorkerOptions configure RunFloorWorker.
type FloorWorkerOptions struct {
	// RedisURL is the Redis to take jobs from (redis://, redis-sentinel:// or redis-cluster://).
	RedisURL string
	// Queue is the one queue it serves.
	Queue string
	// Concurrency is asynq's Config.Concurrency.
	Concurrency int
	// Sleep is how long each job's handler sleeps.
	Sleep time.Duration
	// Log receives FloorWorkerStarted, then asynq's warnings and errors.
	Log io.Writer
}

// RunFloorWorker runs a plain asynq server whose handler sleeps o.Sleep, until ctx ends.
func RunFloorWorker(ctx context.Context, o FloorWorkerOptions) error {
	if o.Queue == "" || o.Concurrency < 1 || o.Sleep < 0 {
		return errors.New("floor worker: a queue, a concurrency of at least 1 and a sleep of 0 or more are needed")
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	opt, err := benchenv.AsynqOptFor(o.RedisURL)
	if err != nil {
		return fmt.Errorf("floor worker: %w", err)
	}
	srv := asynq.NewServer(opt, asynq.Config{Concurrency: o.Concurrency, Queues: map[string]int{o.Queue: 1},
		Logger: writerLogger{o.Log}, LogLevel: asynq.WarnLevel})
	err = srv.Start(asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
		t := time.NewTimer(o.Sleep)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return nil
		}
	}))
	if err != nil {
		return fmt.Errorf("floor worker: %w", err)
	}
	fmt.Fprintln(o.Log, FloorWorkerStarted)
	<-ctx.Done()
	srv.Shutdown()
	return nil
}

// writerLogger is asynq's Logger writing lines to an io.Writer.
type writerLogger struct{ w io.Writer }

func (l writerLogger) Debug(args ...any) {}
func (l writerLogger) Info(args ...any)  {}
func (l writerLogger) Warn(args ...any) {
	fmt.Fprintln(l.w, append([]any{"asynq warning:"}, args...)...)
}
func (l writerLogger) Error(args ...any) {
	fmt.Fprintln(l.w, append([]any{"asynq error:"}, args...)...)
}
func (l writerLogger) Fatal(args ...any) {
	fmt.Fprintln(l.w, append([]any{"asynq fatal:"}, args...)...)
}
