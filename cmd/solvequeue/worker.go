package main

import (
	"context"
	"maps"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/monitor"
)

type workerOptions struct {
	redis           redisOptions
	log             logOptions
	AnySolverURL    string
	CallTimeout     time.Duration
	APIKey          string
	Concurrency     int
	Queues          string
	StrictPriority  bool
	PolicyFile      string
	HTTPAddr        string
	HTTPUser        string
	HTTPPassword    string
	HTTPReadOnly    bool
	HTTPChanges     bool
	HTTPTLSCert     string
	HTTPTLSKey      string
	MetricsToken    string
	ShutdownTimeout time.Duration
	FixedPoll       time.Duration
	NoBreaker       bool
	GatewayAddr     string
	CallbackSecret  string
	gateway         gatewayOptions
	DLQLimit        int
	Pprof           string
}

func (o *workerOptions) register(cmd *cobra.Command) {
	o.redis.register(cmd)
	o.log.register(cmd, "info")
	f := cmd.Flags()
	f.StringVar(&o.AnySolverURL, "anysolver-url", anysolver.DefaultBaseURL, "AnySolver API base URL")
	f.DurationVar(&o.CallTimeout, "anysolver-timeout", anysolver.DefaultTimeout, "time limit of one AnySolver call, answer included; a hung call is retried after it")
	f.StringVar(&o.APIKey, "api-key", "", "AnySolver API key (prefer the environment variable: flags show in ps)")
	f.IntVar(&o.Concurrency, "concurrency", worker.ConcurrencyDefault, "jobs in flight at once (solving is I/O-bound: thousands are fine)")
	f.StringVar(&o.Queues, "queues", "critical=6,default=3,low=1", "queues to serve with their weights, name=weight,...")
	f.BoolVar(&o.StrictPriority, "strict-priority", false, "serve a heavier queue until it is empty")
	f.StringVar(&o.PolicyFile, "policy", "", "classification policy file (YAML or JSON) overriding the defaults; see 'solvequeue policy'")
	f.StringVar(&o.HTTPAddr, "http", "", "serve the web UI (/monitoring), the console (/console), /metrics, /healthz and /readyz on this address, e.g. 127.0.0.1:8080")
	f.StringVar(&o.HTTPUser, "http-user", "", "basic-auth user for --http (required on a non-loopback address)")
	f.StringVar(&o.HTTPPassword, "http-password", "", "basic-auth password for --http (required on a non-loopback address)")
	f.BoolVar(&o.HTTPReadOnly, "http-read-only", false, "the console and the web UI show but do not change anything, on any address")
	f.BoolVar(&o.HTTPChanges, "http-allow-changes", false, "on a non-loopback --http, let the console and the web UI change things (redrive, purge, pause, delete, run; with the credentials); read-only there otherwise")
	f.StringVar(&o.HTTPTLSCert, "http-tls-cert", "", "serve --http over TLS with this certificate (PEM; read again when it changes)")
	f.StringVar(&o.HTTPTLSKey, "http-tls-key", "", "the private key (PEM) of --http-tls-cert")
	f.StringVar(&o.MetricsToken, "metrics-token", "", "bearer token that reads /metrics and /readyz only, for Prometheus (prefer the environment variable: flags show in ps)")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", worker.ShutdownTimeoutDefault, "on SIGTERM, how long running jobs may finish before they are handed back (paid tasks are resumed, not re-paid)")
	f.DurationVar(&o.FixedPoll, "poll-interval", 0, "poll every this long instead of adaptive polling (0: adaptive)")
	f.BoolVar(&o.NoBreaker, "no-breaker", false, "turn off the account breaker (pausing queues on zero balance or a bad key)")
	f.StringVar(&o.GatewayAddr, "gateway", "", "also serve the gateway (AnySolver's API in front of the queue) on this address, e.g. 127.0.0.1:8090")
	f.StringVar(&o.CallbackSecret, "callback-secret", "", "secret that signs the callbacks of jobs of no gateway key, and that a gateway key without a callbackSecret gets its own derived from (see 'solvequeue keys callback-secret'); without it those go unsigned")
	o.gateway.register(cmd)
	f.Lookup("keys").Usage = "the gateway keys file: each key's callbackSecret signs the callbacks of its jobs (read at start); with --gateway, also the keys it accepts"
	f.StringVar(&o.Pprof, "pprof", "", "serve Go's profiles (/debug/pprof/: heap, goroutine, CPU) on this loopback address, e.g. 127.0.0.1:6060, for finding where memory and CPU go")
	f.IntVar(&o.DLQLimit, "dlq-limit", deadletter.LimitDefault, "most entries in the dead-letter queue: at the limit a dying job stays in asynq's archive only and is reported, nothing is trimmed (0: no limit)")
}

// Validate checks the options and names what is wrong.
func (o *workerOptions) Validate() error {
	if err := mustHave(o.APIKey, "api-key"); err != nil {
		return err
	}
	if err := anysolver.CheckAPIKey(o.APIKey); err != nil {
		return usageError("--api-key (%s) %v", envName("api-key"), err)
	}
	if o.CallTimeout < time.Second {
		return usageError("--anysolver-timeout must be at least 1s, got %s", o.CallTimeout)
	}
	if o.Concurrency < 1 {
		return usageError("--concurrency must be at least 1, got %d", o.Concurrency)
	}
	if _, err := parseQueues(o.Queues); err != nil {
		return err
	}
	if (o.HTTPTLSCert == "") != (o.HTTPTLSKey == "") {
		return usageError("set both --http-tls-cert and --http-tls-key, or neither")
	}
	if o.MetricsToken != "" && o.MetricsToken == o.HTTPPassword {
		return usageError("--metrics-token must differ from --http-password: it is the scraper's read-only secret")
	}
	if o.Pprof != "" && !monitor.IsLoopback(o.Pprof) {
		return usageError("--pprof %s is not a loopback address: the profiles show the process's memory, secrets included", o.Pprof)
	}
	if o.DLQLimit < 0 {
		return usageError("--dlq-limit must be 0 (no limit) or more, got %d", o.DLQLimit)
	}
	if o.GatewayAddr != "" {
		return o.gateway.check(o.GatewayAddr)
	}
	if o.gateway.Keys != "" {
		return o.gateway.loadKeys()
	}
	return nil
}

// deadLetterLimit is --dlq-limit as worker.Config and monitor.Config take it (negative: none).
func (o *workerOptions) deadLetterLimit() int {
	if o.DLQLimit == 0 {
		return -1
	}
	return o.DLQLimit
}

func newWorkerCmd(env *Env) *cobra.Command {
	o := &workerOptions{}
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Run a worker: take solve jobs from Redis and solve them through AnySolver",
		Long: `Run a worker: an asynq server that takes solve jobs from Redis, creates and polls
AnySolver tasks, and records each job's outcome (solved, failed or dead).

The API key stays in the worker: it never reaches Redis, a log line or the web UI.
On SIGTERM the worker stops taking jobs, lets running ones finish for
--shutdown-timeout, and hands the rest back with their paid AnySolver tasks
recorded, so the next worker resumes them instead of paying again.`,
		Example: `  REDIS_URL=redis://127.0.0.1:6379 ANYSOLVER_API_KEY=... solvequeue worker
  solvequeue worker --queues critical=6,default=3 --concurrency 5000 --http 127.0.0.1:8080
  solvequeue worker --policy policy.yaml --http :8080   # needs SOLVEQUEUE_HTTP_USER/PASSWORD
  solvequeue worker --http :8443 --http-tls-cert tls.crt --http-tls-key tls.key   # + SOLVEQUEUE_METRICS_TOKEN for Prometheus`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return runWorker(cmd.Context(), env, o)
		},
	}
	o.register(cmd)
	return cmd
}

// workerGCPercent is the worker's garbage-collection target unless GOGC says otherwise. A worker
// holds thousands of jobs that mostly wait on AnySolver: its live heap is small and its CPU idle,
// so collecting at 50 % growth instead of Go's 100 % trades a little CPU for a quarter less memory
// (10,000 jobs in flight: 235 MB peak RSS instead of 281 MB, measured by 'solvequeue bench').
const workerGCPercent = 50

func runWorker(ctx context.Context, env *Env, o *workerOptions) error {
	log, err := o.log.logger(env.Stderr)
	if err != nil {
		return err
	}
	if env.Getenv("GOGC") == "" {
		debug.SetGCPercent(workerGCPercent)
	}
	policy := policyfile.Default()
	if o.PolicyFile != "" {
		if policy, err = policyfile.Load(o.PolicyFile); err != nil {
			return usageError("--policy: %v", err)
		}
	}
	queues, _ := parseQueues(o.Queues)
	if o.HTTPAddr != "" && !monitor.IsLoopback(o.HTTPAddr) && (o.HTTPUser == "" || o.HTTPPassword == "") {
		return usageError("--http %s is not a loopback address: set SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD (or --http-user/--http-password) so the web UI and metrics are not open to the network", o.HTTPAddr)
	}
	client, err := anysolver.New(anysolver.Config{BaseURL: o.AnySolverURL, APIKey: o.APIKey, Timeout: o.CallTimeout})
	if err != nil {
		return usageError("%v", err)
	}
	if o.Pprof != "" { // once the flags are known good: a refused command opens no port
		addr, stop, err := servePprof(o.Pprof)
		if err != nil {
			return usageError("--pprof: %v", err)
		}
		defer stop()
		log.Info("serving Go's profiles", "url", "http://"+addr+"/debug/pprof/")
	}
	rc, err := o.redis.open(ctx, 0)
	if err != nil {
		return err
	}
	defer rc.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	metrics := worker.NewMetricsFor(reg, policy.Classification())
	var keySecrets map[string]string
	if o.gateway.keys != nil {
		keySecrets = o.gateway.keys.CallbackSecrets()
	}
	w, err := worker.New(worker.Config{Redis: rc, AnySolver: client, Policy: policy, Queues: queues,
		StrictPriority: o.StrictPriority, Concurrency: o.Concurrency, ShutdownTimeout: o.ShutdownTimeout,
		Poll: worker.PollConfig{Fixed: o.FixedPoll > 0, Interval: o.FixedPoll}, Breaker: worker.BreakerConfig{Disabled: o.NoBreaker},
		CallbackSecret: o.CallbackSecret, CallbackKeySecrets: keySecrets, CallbackAllowPrivate: o.gateway.CallbackAllowPrivate,
		DeadLetterLimit: o.deadLetterLimit(), Observer: metrics, Logger: log})
	if err != nil {
		return usageError("%v", err)
	}
	var gw atomic.Pointer[gateway.Handler] // the gateway, once it serves, for /readyz's warnings
	if o.HTTPAddr != "" {
		httpCfg := monitor.Config{Addr: o.HTTPAddr, Redis: rc, Registry: reg,
			User: o.HTTPUser, Password: o.HTTPPassword, MetricsToken: o.MetricsToken, ReadOnly: o.HTTPReadOnly,
			AllowChanges: o.HTTPChanges, TLSCertFile: o.HTTPTLSCert, TLSKeyFile: o.HTTPTLSKey,
			DeadLetterLimit: o.deadLetterLimit(), Policy: policy, Logger: log,
			Ready: func(ctx context.Context) (any, error) { return w.Ready(ctx) }}
		if o.GatewayAddr != "" {
			httpCfg.Warnings = func(context.Context) []string {
				if h := gw.Load(); h != nil {
					return h.UnservedWarnings()
				}
				return nil
			}
		}
		addr, stop, err := monitor.ListenAndServe(ctx, httpCfg)
		if err != nil {
			return err
		}
		defer func() { _ = stop(context.Background()) }()
		scheme := "http://"
		if o.HTTPTLSCert != "" {
			scheme = "https://"
		}
		log.Info("serving the web UI and metrics", "url", scheme+addr+"/monitoring/", "console", scheme+addr+monitor.ConsolePath+"/",
			"metrics", scheme+addr+"/metrics", "ui_changes", httpCfg.AllowsChanges())
	}
	if o.CallbackSecret == "" {
		log.Info("no --callback-secret: the callbacks of jobs of no gateway key, and of keys without a callbackSecret, are delivered unsigned")
	}
	if len(keySecrets) > 0 {
		log.Info("callback secrets of gateway keys loaded", "keys", slices.Sorted(maps.Keys(keySecrets)))
	}
	if err := w.Start(ctx); err != nil {
		return err
	}
	if o.GatewayAddr != "" {
		h, _, stopGateway, err := o.gateway.serve(ctx, o.GatewayAddr, enqueue.Config{Redis: rc}, policy, reg, log, queues)
		if err != nil {
			_ = w.Shutdown(context.WithoutCancel(ctx))
			return err
		}
		gw.Store(h)
		defer func() { _ = stopGateway(context.WithoutCancel(ctx)) }()
	}
	<-ctx.Done()
	log.Info("shutting down: no new jobs; running jobs get the shutdown timeout", "shutdown_timeout", o.ShutdownTimeout)
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), worker.DrainTimeoutDefault)
	defer cancel()
	return w.Shutdown(drainCtx)
}

// parseQueues reads "name=weight,..." (a bare name has weight 1).
func parseQueues(s string) (map[string]int, error) {
	queues := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, hasWeight := strings.Cut(part, "=")
		w := 1
		if hasWeight {
			n, err := strconv.Atoi(weight)
			if err != nil || n < 1 {
				return nil, usageError("--queues: %q: the weight must be a whole number of at least 1", part)
			}
			w = n
		}
		queues[strings.TrimSpace(name)] = w
	}
	if len(queues) == 0 {
		return nil, usageError("--queues: name at least one queue, e.g. default=1")
	}
	return queues, nil
}
