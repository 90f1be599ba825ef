package worker

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/attempt"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/fairshare"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/loop"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/internal/spend"
	"github.com/solvequeue/solvequeue/internal/tally"
)

// DrainTimeoutDefault is how long a caller of Shutdown should let the attempts asynq let go of
// finish: long enough for a createTask in flight (the client's default 30 s timeout) and the save
// of its remote id (10 s).
const DrainTimeoutDefault = 45 * time.Second

// Worker is a running solvequeue worker: an asynq server with the solve handler for the job
// queues and one for callback deliveries, the account breaker's prober, the dead-letter mirror
// and the tally of ended jobs the console reads.
type Worker struct {
	cfg       Config
	server    *asynq.Server // the job queues
	delivery  *asynq.Server // callback.Queue alone (newDeliveryServer)
	handler   *attempt.Handler
	breaker   *breaker.Breaker // nil when disabled
	mirror    *attempt.Mirror
	budgets   *spend.Watcher
	tally     *tally.Tally
	health    *redisconn.Health
	inspector *asynq.Inspector
	queues    []string
	callbacks *callback.Callbacks
	balance   *balance.Reader
	bodies    *imagebody.Sweeper
	share     *fairshare.Share
	tenants   *loop.Loop // reads how many gateway keys there are, for the share
}

// providerNamer is an Observer that keeps a metric label for each provider the operator names
// (Metrics does), so that providers jobs invent never crowd a real one out.
type providerNamer interface{ NameProviders(names []string) }

// New builds a Worker from cfg; Start runs it.
func New(cfg Config) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	inspector := asynq.NewInspectorFromRedisClient(cfg.Redis)
	queues := slices.Sorted(maps.Keys(cfg.Queues))
	if m, ok := cfg.Observer.(providerNamer); ok {
		m.NameProviders(cfg.Policy.ProviderNames())
	}
	w := &Worker{cfg: cfg, inspector: inspector, queues: queues,
		health: redisconn.NewHealth(redisconn.HealthParams{Redis: cfg.Redis, Logger: cfg.Logger, Now: cfg.Now})}
	if !cfg.Breaker.Disabled {
		w.breaker = breaker.New(breaker.Params{Config: cfg.Breaker, Redis: cfg.Redis,
			AnySolver: cfg.AnySolver, Queues: queues, Log: cfg.Logger, Observer: cfg.Observer, Now: cfg.Now})
	}
	w.tally = tally.New(tally.Params{Redis: cfg.Redis, Codes: metrics.KnownCodes(cfg.Policy.Classification()), Log: cfg.Logger, Now: cfg.Now})
	w.budgets = spend.New(spend.Params{Ledger: ledger.New(cfg.Redis), Policy: cfg.Policy, Queues: queues,
		Interval: spend.CheckIntervalDefault, Observer: cfg.Observer, Log: cfg.Logger})
	w.share = fairshare.New(cfg.Concurrency, fairshare.Reserve(cfg.Concurrency)).WithClock(cfg.Now)
	w.callbacks = callback.New(callback.Params{Redis: cfg.Redis, Secret: cfg.CallbackSecret, KeySecrets: cfg.CallbackKeySecrets, Window: cfg.CallbackWindow,
		Backoff: cfg.CallbackBackoff, Observer: cfg.Observer, Log: cfg.Logger, Now: cfg.Now, AllowPrivate: cfg.CallbackAllowPrivate})
	w.handler = attempt.New(attempt.Params{Redis: cfg.Redis, AnySolver: cfg.AnySolver, Policy: cfg.Policy,
		Lifetime: cfg.Lifetime, HoldWait: cfg.Breaker.ProbeMin, Poll: cfg.Poll, RemoteTTL: cfg.RemoteTTL,
		DeadLetterLimit: cfg.DeadLetterLimit, Budgets: w.budgets.Ledger,
		Providers: &breaker.Providers{Redis: cfg.Redis, Failures: breaker.ProviderFailuresDefault,
			Cooldown: breaker.ProviderCooldownDefault, Log: cfg.Logger},
		Breaker: w.breaker, Callbacks: w.callbacks, Observer: metrics.Observers{cfg.Observer, w.tally},
		Share: w.share,
		Log:   cfg.Logger, Now: cfg.Now})
	w.balance = balance.New(balance.Params{AnySolver: cfg.AnySolver, Redis: cfg.Redis,
		Interval: cfg.BalanceInterval, Observer: cfg.Observer, Log: cfg.Logger, Now: cfg.Now})
	w.bodies = imagebody.NewSweeper(imagebody.SweeperParams{Redis: cfg.Redis, Queues: queues, Log: cfg.Logger, Now: cfg.Now})
	w.mirror = w.handler.NewMirror(attempt.MirrorParams{Redis: cfg.Redis, Inspector: inspector, Queues: queues,
		Log: cfg.Logger, Now: cfg.Now})
	asynqConfig := func(concurrency int, queues map[string]int) asynq.Config {
		return asynq.Config{
			Concurrency:              concurrency,
			Queues:                   queues,
			StrictPriority:           cfg.StrictPriority,
			RetryDelayFunc:           w.handler.RetryDelayFunc(rand.Float64),
			IsFailure:                attempt.IsFailure,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			Logger:                   newAsynqLogger(cfg.Logger, w.health),
			LogLevel:                 asynq.WarnLevel,
			DelayedTaskCheckInterval: time.Second,
		}
	}
	w.server = asynq.NewServerFromRedisClient(cfg.Redis, asynqConfig(cfg.Concurrency, cfg.Queues))
	w.delivery = asynq.NewServerFromRedisClient(cfg.Redis,
		asynqConfig(deliveryConcurrency(cfg.Concurrency), map[string]int{callback.Queue: 1}))
	return w, nil
}

// Callback deliveries are fetched by an asynq server of their own, in the same process, with the
// same handler: asynq fetches a job by trying the server's queues one after the other, one Redis
// round trip each, so a delivery queue served beside the job queues would cost nearly every job
// fetch a round trip more (two in three, at the weight that keeps deliveries first), for a queue
// that is empty most of the time. Apart, an empty delivery queue is looked at about once a second,
// and deliveries never wait behind a backlog of jobs for a slot, nor hold one a job wants.
//
// deliveryConcurrency is how many deliveries a worker runs at once: each is one POST of at most
// callback.Timeout, so a few dozen keep up with thousands of jobs ending per second.
func deliveryConcurrency(jobConcurrency int) int { return max(1, min(jobConcurrency, 64)) }

// Handler returns the asynq handler the server runs: the solve handler, which also runs callback
// deliveries (package callback) and archives any other task in our queues that is not a solvequeue
// job instead of retrying it. Tests run one attempt with it, without a server.
func (w *Worker) Handler() asynq.Handler { return w.handler }

// Start starts processing jobs and the background loops; it returns once they run.
func (w *Worker) Start(ctx context.Context) error {
	// The readers of per-queue keys (dead letters, the breaker's pauses) find this worker's
	// queues in keys.Queues; the mirror registers them again on each sweep, should Redis be
	// away now.
	if err := queuereg.Register(ctx, w.cfg.Redis, w.queues...); err != nil {
		w.cfg.Logger.Warn("could not register the queues yet; retried on the next dead-letter sweep", "err", err)
	}
	w.countTenants(ctx) // before the first job: a burst at start meets the share already
	if err := w.server.Start(w.handler); err != nil {
		return fmt.Errorf("start worker: %w", err)
	}
	if err := w.delivery.Start(w.handler); err != nil {
		w.server.Shutdown()
		return fmt.Errorf("start worker's callback deliveries: %w", err)
	}
	if w.breaker != nil {
		w.breaker.Start(ctx)
	}
	w.mirror.Start(ctx)
	w.budgets.Start(ctx)
	w.tally.Start(ctx)
	w.health.Start(ctx)
	w.balance.Start(ctx)
	w.bodies.Start(ctx)
	w.tenants = loop.Every(ctx, time.Minute, false, w.countTenants)
	w.cfg.Logger.Info("worker started", "queues", w.cfg.Queues, "concurrency", w.cfg.Concurrency,
		"anysolver", w.cfg.AnySolver.BaseURL())
	return nil
}

// Shutdown stops fetching jobs, lets running ones finish for ShutdownTimeout, hands the rest
// back to their queues with their paid remote tasks recorded, and stops the background loops.
//
// asynq hands back the jobs still running after ShutdownTimeout without waiting for their
// handlers, and the process may exit right after. One may be inside a paid createTask whose remote
// id must still be recorded for the next worker to resume; the others see their context canceled
// and return at once. ctx bounds that wait (DrainTimeoutDefault is a sensible bound): when it ends
// first, Shutdown returns an error saying how many attempts were still running, since a paid task
// among them may be paid again.
func (w *Worker) Shutdown(ctx context.Context) error {
	// Both at once: each may wait ShutdownTimeout for what runs. A delivery an ending attempt
	// queues meanwhile waits in Redis for the next worker.
	var stopping sync.WaitGroup
	stopping.Go(w.delivery.Shutdown)
	w.server.Shutdown()
	stopping.Wait()
	var drainErr error
	if n := w.handler.Running(); n > 0 {
		w.cfg.Logger.Info("waiting for handed-back jobs to record their paid AnySolver tasks", "jobs", n)
		if err := w.handler.Drain(ctx); err != nil {
			left := w.handler.Running()
			w.cfg.Logger.Error("jobs still running when the drain ended: a paid AnySolver task may be paid again",
				"jobs", left, "err", err)
			drainErr = fmt.Errorf("shutdown: %d attempts still running: %w", left, err)
		}
	}
	if w.breaker != nil {
		w.breaker.Shutdown()
	}
	w.mirror.Shutdown()
	w.budgets.Shutdown()
	w.tally.Shutdown(ctx)
	w.health.Shutdown()
	w.balance.Shutdown()
	w.bodies.Shutdown()
	w.tenants.Stop()
	w.cfg.Logger.Info("worker stopped")
	return drainErr
}

// Ready reports whether the worker can do its work: Redis answers. The breaker's state is
// returned for the readiness body.
func (w *Worker) Ready(ctx context.Context) (BreakerState, error) {
	if err := w.cfg.Redis.Ping(ctx).Err(); err != nil {
		return BreakerState{}, fmt.Errorf("redis: %w", err)
	}
	return breaker.Read(ctx, w.cfg.Redis)
}

// Redis returns the worker's Redis connection.
func (w *Worker) Redis() redis.UniversalClient { return w.cfg.Redis }

// asynqLogger sends asynq's own log lines to slog, quieted so that an outage or a burst is a
// few lines, not one per job: while Redis is unreachable (the RedisHealth watcher said so once)
// asynq's complaints go to debug, and any other warning or error is logged once per kind per
// asynqLogWindow, the next one saying how many like it were left out.
type asynqLogger struct {
	log    *slog.Logger
	health *redisconn.Health
	limit  *lineLimiter
}

// asynqLogWindow is how long one kind of asynq warning is kept to one line.
const asynqLogWindow = time.Minute

func newAsynqLogger(l *slog.Logger, health *redisconn.Health) asynqLogger {
	return asynqLogger{log: l.With("component", "asynq"), health: health, limit: newLineLimiter(asynqLogWindow, time.Now)}
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
	l.emit(slog.LevelWarn, msg)
}
func (l asynqLogger) Error(args ...any) { l.emit(slog.LevelError, fmt.Sprint(args...)) }
func (l asynqLogger) Fatal(args ...any) { l.emit(slog.LevelError, fmt.Sprint(args...)) }

func (l asynqLogger) emit(level slog.Level, msg string) {
	if l.redisDown(msg) {
		l.log.Debug(msg)
		return
	}
	ok, left := l.limit.allow(msg)
	if !ok {
		l.log.Debug(msg)
		return
	}
	if left > 0 {
		l.log.Log(context.Background(), level, msg, "similar_lines_left_out", left)
		return
	}
	l.log.Log(context.Background(), level, msg)
}

// redisDown reports whether msg is a complaint about a Redis that the watcher knows (or, asked
// now, finds) unreachable.
func (l asynqLogger) redisDown(msg string) bool {
	if l.health == nil {
		return false
	}
	if strings.Contains(msg, "panic") {
		return false // a handler's panic is news whatever Redis does
	}
	if l.health.Down() {
		return true
	}
	return redisTrouble(msg) && !l.health.Check(context.Background())
}

// lineLimiter lets one log line of each kind through per window and counts the rest.
type lineLimiter struct {
	window time.Duration
	now    func() time.Time
	mu     sync.Mutex
	kinds  map[string]*lineKind
}

type lineKind struct {
	last time.Time
	left int
}

func newLineLimiter(window time.Duration, now func() time.Time) *lineLimiter {
	return &lineLimiter{window: window, now: now, kinds: map[string]*lineKind{}}
}

// allow reports whether a line may be logged, and how many of its kind were left out since
// the last one that was.
func (l *lineLimiter) allow(msg string) (bool, int) {
	kind := lineKindOf(msg)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.kinds[kind]
	if k == nil {
		if len(l.kinds) >= 256 { // kinds are a handful; never let odd text grow the map
			clear(l.kinds)
		}
		k = &lineKind{}
		l.kinds[kind] = k
	} else if now.Sub(k.last) < l.window {
		k.left++
		return false, 0
	}
	left := k.left
	k.last, k.left = now, 0
	return true, left
}

// lineKindOf is the fixed start of an asynq line: at most its first three words, before any
// task id, queue name or error text: "Could not move", "Lease reset failed", "Dequeue error".
func lineKindOf(msg string) string {
	if i := strings.IndexAny(msg, ":=[\""); i >= 0 {
		msg = msg[:i]
	}
	words := strings.Fields(msg)
	return strings.Join(words[:min(len(words), 3)], " ")
}

// countTenants tells the fair share how many key names the gateways have recorded: with two or
// more, each worker keeps its reserve of slots for a quiet key from the start. A failed read
// keeps the last count.
func (w *Worker) countTenants(ctx context.Context) {
	n, err := w.cfg.Redis.SCard(ctx, keys.GatewayKeyNames).Result()
	if err != nil {
		w.cfg.Logger.Debug("could not count the gateway keys for the fair share", "err", err)
		return
	}
	w.share.SetGatewayKeys(int(n))
}
