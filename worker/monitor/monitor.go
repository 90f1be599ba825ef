package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/console"
)

// Paths of the HTTP side.
const (
	MonitoringPath = "/monitoring" // asynqmon's RootPath; the UI lives under MonitoringPath + "/"
	ConsolePath    = console.Path  // solvequeue's own console, beside asynqmon
	MetricsPath    = "/metrics"
	HealthzPath    = "/healthz"
	ReadyzPath     = "/readyz"
)

// Timeouts of the HTTP side.
const (
	// ReadyTimeout bounds one readiness check.
	ReadyTimeout = 3 * time.Second
	// ShutdownTimeout bounds the graceful stop that follows the end of ListenAndServe's ctx.
	ShutdownTimeout = 5 * time.Second
)

// Config configures the HTTP side of a worker.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8080" or ":8080". On a loopback address
	// (see IsLoopback) the side is open; on any other it requires User and Password. Required.
	Addr string
	// Redis is the worker's Redis, read by asynqmon, the readiness check and the queue and
	// dead-letter collectors. It is never closed here. Required.
	Redis redis.UniversalClient
	// Registry holds the solvequeue_* collectors (worker.NewMetrics), registered by the caller.
	// /metrics serves it overlaid with asynq's queue metrics and the dead-letter collector,
	// which are kept in a registry of the handler's own so that Registry is never changed.
	// Defaults to an empty registry.
	Registry *prometheus.Registry
	// User and Password are the basic-auth credentials (SOLVEQUEUE_HTTP_USER,
	// SOLVEQUEUE_HTTP_PASSWORD). Set both or neither; when set they are required on loopback too.
	// Defaults to none.
	User, Password string
	// ReadOnly makes asynqmon and the console read-only: people may look, not pause, delete, run,
	// redrive or purge. Defaults to false.
	ReadOnly bool
	// Policy is the workers' policy, whose queue budgets and provider lists the console shows.
	// Defaults to classify.Default().
	Policy *classify.Policy
	// Ready checks readiness; the value it returns is JSON-encoded as "breaker" into the
	// /readyz body. Defaults to a Redis PING followed by worker.ReadBreaker.
	Ready func(ctx context.Context) (any, error)
	// Logger receives the HTTP side's errors. Defaults to slog.Default().
	Logger *slog.Logger
}

// withDefaults returns a copy of c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.Registry == nil {
		c.Registry = prometheus.NewRegistry()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Ready == nil {
		rc := c.Redis
		c.Ready = func(ctx context.Context) (any, error) { return pingAndReadBreaker(ctx, rc) }
	}
	return c
}

func (c Config) validate() error {
	if c.Addr == "" {
		return errors.New("monitor: Addr must be a listen address such as 127.0.0.1:8080, got \"\"")
	}
	if c.Redis == nil {
		return errors.New("monitor: Redis must be the worker's Redis client, got nil")
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("monitor: set both SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD, or neither")
	}
	if c.User == "" && !IsLoopback(c.Addr) {
		return fmt.Errorf("%w: --http %s is reachable from other hosts: set SOLVEQUEUE_HTTP_USER and "+
			"SOLVEQUEUE_HTTP_PASSWORD, or listen on 127.0.0.1", ErrCredentialsRequired, c.Addr)
	}
	return nil
}

// NewHandler returns the HTTP side as one handler, access control applied: /monitoring/
// (asynqmon), /console/ (solvequeue's console), /metrics, /healthz, /readyz, and / redirecting
// to /monitoring/.
//
// It returns an error wrapping ErrCredentialsRequired when Addr is not loopback and no
// credentials are set. Nothing it builds closes cfg.Redis.
func NewHandler(cfg Config) (http.Handler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()

	// asynq's queue metrics and the Redis-read solvequeue metrics live in a registry of our own:
	// the caller's is left as given, and the dead-letter collector's solvequeue_breaker_open
	// (shared state, read from Redis) replaces the worker's own gauge of that name.
	own := prometheus.NewRegistry()
	queueMetrics := metrics.NewQueueMetricsCollector(asynq.NewInspectorFromRedisClient(cfg.Redis))
	if err := own.Register(unchecked{queueMetrics}); err != nil {
		return nil, fmt.Errorf("monitor: register asynq queue metrics: %w", err)
	}
	if err := own.Register(worker.NewDeadLetterCollector(cfg.Redis)); err != nil {
		return nil, fmt.Errorf("monitor: register the dead-letter collector: %w", err)
	}
	gatherer := overlay{top: own, base: cfg.Registry}

	con, err := console.New(console.Config{Redis: cfg.Redis, Policy: cfg.Policy, ReadOnly: cfg.ReadOnly, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(MonitoringPath+"/", newUI(cfg))
	mux.Handle(ConsolePath+"/", con)
	mux.Handle(MetricsPath, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc(HealthzPath, healthz)
	mux.Handle(ReadyzPath, readyz(cfg))
	mux.Handle("/{$}", http.RedirectHandler(MonitoringPath+"/", http.StatusFound))

	return guard(cfg, mux), nil
}

// ListenAndServe listens on cfg.Addr (":0" picks a free port), serves NewHandler(cfg) in a
// goroutine and returns the address it listens on. The server stops when ctx ends (waiting
// at most ShutdownTimeout for requests in flight) or when stop is called, whichever comes
// first; stop waits for requests in flight until its own ctx ends.
func ListenAndServe(ctx context.Context, cfg Config) (addr string, stop func(context.Context) error, err error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return "", nil, err
	}
	log := cfg.withDefaults().Logger
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return "", nil, fmt.Errorf("monitor: listen on %s: %w (is another worker using that port? pick another with --http)", cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("monitor: HTTP side stopped", "addr", ln.Addr().String(), "err", err)
		}
	}()

	var once sync.Once
	var stopErr error
	stop = func(ctx context.Context) error {
		once.Do(func() {
			stopErr = srv.Shutdown(ctx)
			<-served
		})
		return stopErr
	}
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
			defer cancel()
			_ = stop(sctx)
		case <-served:
		}
	}()
	return ln.Addr().String(), stop, nil
}
