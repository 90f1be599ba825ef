package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
)

// Worker is a running solvequeue worker: an asynq server with the solve handler, the
// account breaker's prober and the dead-letter mirror.
type Worker struct {
	cfg       Config
	server    *asynq.Server
	handler   *handler
	breaker   *breaker
	mirror    *deadLetterMirror
	inspector *asynq.Inspector
}

// New builds a Worker from cfg; Start runs it.
func New(cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	inspector := asynq.NewInspectorFromRedisClient(cfg.Redis)
	queues := slices.Sorted(func(yield func(string) bool) {
		for q := range cfg.Queues {
			if !yield(q) {
				return
			}
		}
	})
	w := &Worker{cfg: cfg, inspector: inspector}
	st := &store{rc: cfg.Redis}
	if !cfg.Breaker.Disabled {
		w.breaker = newBreaker(breakerParams{cfg: cfg.Breaker, rc: cfg.Redis, inspector: inspector,
			anysolver: cfg.AnySolver, queues: queues, log: cfg.Logger, observer: cfg.Observer, now: cfg.Now})
	}
	w.handler = &handler{policy: cfg.Policy, anysolver: cfg.AnySolver, store: st, poller: newPoller(cfg.Poll),
		breaker: w.breaker, observer: cfg.Observer, log: cfg.Logger, now: cfg.Now, jitter: rand.Float64,
		remoteTTL: cfg.RemoteTTL, lifetime: cfg.Lifetime}
	w.mirror = newDeadLetterMirror(deadLetterMirrorParams{rc: cfg.Redis, inspector: inspector, queues: queues,
		store: st, log: cfg.Logger, now: cfg.Now})
	w.server = asynq.NewServerFromRedisClient(cfg.Redis, asynq.Config{
		Concurrency:              cfg.Concurrency,
		Queues:                   cfg.Queues,
		StrictPriority:           cfg.StrictPriority,
		RetryDelayFunc:           retryDelayFunc(cfg.Policy, rand.Float64),
		IsFailure:                isFailure,
		ShutdownTimeout:          cfg.ShutdownTimeout,
		Logger:                   newAsynqLogger(cfg.Logger),
		LogLevel:                 asynq.WarnLevel,
		DelayedTaskCheckInterval: time.Second,
	})
	return w, nil
}

// Handler returns the solve handler, for running one attempt without a server (tests).
func (w *Worker) Handler() asynq.Handler { return w.handler }

// Mux returns the asynq handler the server runs: the solve handler for enqueue.TaskType, and
// for any other task type in our queues an error that archives it instead of retrying.
func (w *Worker) Mux() asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		if t.Type() != enqueue.TaskType {
			return fmt.Errorf("task type %q is not a solvequeue job: %w", t.Type(), asynq.SkipRetry)
		}
		return w.handler.ProcessTask(ctx, t)
	})
}

// Start starts processing jobs and the background loops; it returns once they run.
func (w *Worker) Start(ctx context.Context) error {
	if err := w.server.Start(w.Mux()); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if w.breaker != nil {
		w.breaker.start(ctx)
	}
	w.mirror.start(ctx)
	w.cfg.Logger.Info("worker started", "queues", w.cfg.Queues, "concurrency", w.cfg.Concurrency,
		"anysolver", w.cfg.AnySolver.BaseURL())
	return nil
}

// Shutdown stops fetching jobs, lets running ones finish for ShutdownTimeout, hands the rest
// back to their queues with their paid remote tasks recorded, and stops the background loops.
func (w *Worker) Shutdown() {
	w.server.Shutdown()
	if w.breaker != nil {
		w.breaker.shutdown()
	}
	w.mirror.shutdown()
	w.cfg.Logger.Info("worker stopped")
}

// Ready reports whether the worker can do its work: Redis answers. The breaker's state is
// returned for the readiness body.
func (w *Worker) Ready(ctx context.Context) (BreakerState, error) {
	if err := w.cfg.Redis.Ping(ctx).Err(); err != nil {
		return BreakerState{}, fmt.Errorf("redis: %w", err)
	}
	return ReadBreaker(ctx, w.cfg.Redis)
}

// Redis returns the worker's Redis connection.
func (w *Worker) Redis() redis.UniversalClient { return w.cfg.Redis }

// asynqLogger sends asynq's own log lines to slog.
type asynqLogger struct{ log *slog.Logger }

func newAsynqLogger(l *slog.Logger) asynqLogger {
	return asynqLogger{log: l.With("component", "asynq")}
}

func (l asynqLogger) Debug(args ...any) { l.log.Debug(fmt.Sprint(args...)) }
func (l asynqLogger) Info(args ...any)  { l.log.Info(fmt.Sprint(args...)) }
func (l asynqLogger) Warn(args ...any) {
	msg := fmt.Sprint(args...)
	if strings.HasPrefix(msg, "Retry exhausted for task") {
		// Every dead job says so; the worker's own "job ended" line already did.
		l.log.Debug(msg)
		return
	}
	l.log.Warn(msg)
}
func (l asynqLogger) Error(args ...any) { l.log.Error(fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.log.Error(fmt.Sprint(args...)) }
