package monitor

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynq/x/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/httpserve"
	"github.com/solvequeue/solvequeue/internal/loop"
	workermetrics "github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/policyfile"
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

// Timeouts and limits of the HTTP side.
const (
	// ReadyTimeout bounds one readiness check.
	ReadyTimeout = 3 * time.Second
	// ShutdownTimeout bounds the graceful stop that follows the end of ListenAndServe's ctx.
	ShutdownTimeout = 5 * time.Second
	// ReadHeaderTimeout, ReadTimeout, WriteTimeout and IdleTimeout bound a request's headers,
	// the whole request, the response (a /metrics scrape reads Redis) and an idle keep-alive
	// connection, so slow clients cannot hold connections open.
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 30 * time.Second
	WriteTimeout      = time.Minute
	IdleTimeout       = time.Minute
	// MaxHeaderBytes bounds a request's headers.
	MaxHeaderBytes = 64 << 10
)

// Config configures the HTTP side of a worker.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8080" or ":8080". On a loopback address
	// (see IsLoopback) the side may be read without credentials; on any other it requires User
	// and Password. Required.
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
	// Without them the web UI is read-only. Defaults to none.
	User, Password string
	// MetricsToken is a bearer token (SOLVEQUEUE_METRICS_TOKEN) that reads /metrics and /readyz
	// and nothing else, so that a scraper's secret controls nothing. Defaults to none.
	MetricsToken string
	// ReadOnly makes asynqmon and the console read-only everywhere: people may look, not pause,
	// delete, run, redrive or purge. Defaults to false.
	ReadOnly bool
	// AllowChanges lets the web UI and the console change things (with User and Password) on a non-loopback
	// address, where it is read-only otherwise. Defaults to false.
	AllowChanges bool
	// TLSCertFile and TLSKeyFile (PEM) make ListenAndServe serve HTTPS (TLS 1.2 or newer),
	// reading the files again when they change. Set both or neither. Defaults to plain HTTP.
	TLSCertFile, TLSKeyFile string
	// Now is the clock of the failed-login slowdown. Defaults to time.Now.
	Now func() time.Time
	// Sleep waits for d, or until ctx ends, on Now's clock: it holds the answer to a wrong login
	// (see LoginDelayMax). Defaults to a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// DeadLetterLimit is the worker's bound on the dead-letter queue (worker.Config's), served
	// as solvequeue_dead_letters_limit. Negative: no bound. Defaults to
	// deadletter.LimitDefault.
	DeadLetterLimit int
	// Policy is the workers' policy, whose queue budgets and provider lists the console shows.
	// Defaults to none.
	Policy *policyfile.Policy
	// Ready checks readiness; the value it returns is JSON-encoded as "breaker" into the
	// /readyz body. Defaults to a Redis PING followed by worker.ReadBreaker.
	Ready func(ctx context.Context) (any, error)
	// Warnings names what an operator should know that does not make the process unready (a
	// gateway's key whose queue no worker serves): /readyz answers its lines as "warnings".
	// Defaults to none.
	Warnings func(ctx context.Context) []string
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
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = loop.Sleep
	}
	return c
}

// AllowsChanges reports whether the web UI may pause, delete and run: with credentials, unless
// ReadOnly, and off loopback only when asked (AllowChanges).
func (c Config) AllowsChanges() bool {
	return c.User != "" && !c.ReadOnly && (IsLoopback(c.Addr) || c.AllowChanges)
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
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("monitor: set both --http-tls-cert and --http-tls-key, or neither")
	}
	if c.MetricsToken != "" && c.MetricsToken == c.Password {
		return errors.New("monitor: the metrics token must differ from SOLVEQUEUE_HTTP_PASSWORD: it is the scraper's read-only secret")
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
	if err := own.Register(workermetrics.NewDeadLetterCollector(cfg.Redis)); err != nil {
		return nil, fmt.Errorf("monitor: register the dead-letter collector: %w", err)
	}
	if err := own.Register(workermetrics.NewDeadLetterLimitCollector(cfg.Redis, cfg.DeadLetterLimit)); err != nil {
		return nil, fmt.Errorf("monitor: register the dead-letter limit collector: %w", err)
	}
	gatherer := overlay{top: own, base: cfg.Registry}

	ui := newUI(cfg)
	uiCSP, err := uiPolicy(ui)
	if err != nil {
		return nil, err
	}
	con, err := console.New(console.Config{Redis: cfg.Redis, Policy: cfg.Policy, ReadOnly: !cfg.AllowsChanges(), Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(MonitoringPath+"/", ui)
	mux.Handle(ConsolePath+"/", con)
	mux.Handle(MetricsPath, promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
	}))
	mux.HandleFunc(HealthzPath, healthz)
	mux.Handle(ReadyzPath, readyz(cfg))
	mux.Handle("/{$}", http.RedirectHandler(MonitoringPath+"/", http.StatusFound))

	return guard(cfg, uiCSP, mux), nil
}

// ListenAndServe listens on cfg.Addr (":0" picks a free port), serves NewHandler(cfg) in a
// goroutine (over TLS when cfg names a certificate) and returns the address it listens on. The
// server stops when ctx ends (waiting at most ShutdownTimeout for requests in flight) or when
// stop is called, whichever comes first; stop waits for requests in flight until its own ctx
// ends. Requests are bounded by ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout and
// MaxHeaderBytes. Basic auth over plain HTTP on a non-loopback address is logged as a warning:
// give it TLS, here or in a proxy in front.
func ListenAndServe(ctx context.Context, cfg Config) (addr string, stop func(context.Context) error, err error) {
	h, err := NewHandler(cfg)
	if err != nil {
		return "", nil, err
	}
	log := cfg.withDefaults().Logger
	var certs *httpserve.CertFiles
	if cfg.TLSCertFile != "" {
		if certs, err = httpserve.LoadCertFiles(cfg.TLSCertFile, cfg.TLSKeyFile, log.With("component", "monitor")); err != nil {
			return "", nil, fmt.Errorf("monitor: %w", err)
		}
	} else if !IsLoopback(cfg.Addr) {
		log.Warn("monitor: credentials travel in plain text over HTTP: serve TLS with --http-tls-cert and "+
			"--http-tls-key, or put a TLS-terminating proxy in front", "addr", cfg.Addr)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return "", nil, fmt.Errorf("monitor: listen on %s: %w (is another worker using that port? pick another with --http)", cfg.Addr, err)
	}
	if certs != nil {
		ln = tls.NewListener(ln, certs.TLSConfig())
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	addr, stop = httpserve.Serve(ctx, srv, ln, ShutdownTimeout, log, "monitor: HTTP side")
	return addr, stop, nil
}
