package main

import (
	"context"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/httpserve"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker/monitor"
)

// gatewayAddrDefault is where `solvequeue gateway` listens unless told otherwise.
const gatewayAddrDefault = "127.0.0.1:8090"

// gatewayOptions are the gateway's flags, shared by `gateway` and `worker --gateway`.
type gatewayOptions struct {
	Keys                 string
	MaxBody              int64
	CallbackAllowPrivate bool
	TLSCert, TLSKey      string

	keys *gateway.Keys // read by check
}

func (o *gatewayOptions) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&o.Keys, "keys", "", "gateway keys file (YAML: keys: [{name, key or sha256, queue, rateLimit, lifetime, callbackSecret}]); required on a non-loopback address")
	f.Int64Var(&o.MaxBody, "max-body", gateway.MaxBodyDefault, "largest request body the gateway reads, in bytes")
	f.BoolVar(&o.CallbackAllowPrivate, "callback-allow-private", false, "let callbacks go to loopback, private and link-local addresses (refused by default: server-side request forgery)")
	f.StringVar(&o.TLSCert, "tls-cert", "", "serve the gateway's API over TLS (HTTPS, 1.2 or newer) with this certificate (PEM; read again when it changes)")
	f.StringVar(&o.TLSKey, "tls-key", "", "the private key (PEM) of --tls-cert")
}

// check reads the keys file and refuses a gateway on addr that would start open to the network,
// before anything else starts.
func (o *gatewayOptions) check(addr string) error {
	if o.MaxBody < 1024 {
		return usageError("--max-body must be at least 1024 bytes, got %d", o.MaxBody)
	}
	if (o.TLSCert == "") != (o.TLSKey == "") {
		return usageError("set both --tls-cert and --tls-key, or neither")
	}
	if o.TLSCert != "" { // read once here, so that a bad pair stops the start before anything runs
		if _, err := httpserve.LoadCertFiles(o.TLSCert, o.TLSKey, nil); err != nil {
			return usageError("--tls-cert/--tls-key: %v", err)
		}
	}
	if o.Keys != "" {
		if err := o.loadKeys(); err != nil {
			return err
		}
	} else if !gateway.IsLoopback(addr) {
		return usageError("%v: %s is reachable from other hosts and any clientKey would be accepted: "+
			"give --keys FILE (see the README's gateway section), or listen on 127.0.0.1", gateway.ErrKeysRequired, addr)
	}
	return nil
}

// loadKeys reads --keys, once, before anything starts: the gateway and the workers read it at
// start only, so a changed file takes a restart.
func (o *gatewayOptions) loadKeys() error {
	k, err := gateway.LoadKeys(o.Keys)
	if err != nil {
		return usageError("--keys: %v", err)
	}
	o.keys = k
	return nil
}

// serve starts the gateway on addr (checked by check) with a client of cfg, its metrics in reg,
// and warns of each key whose queue no running worker serves; own lists the queues this process
// serves itself (a worker's gateway), which its worker may not have announced yet.
func (o *gatewayOptions) serve(ctx context.Context, addr string, cfg enqueue.Config, policy *policyfile.Policy, reg prometheus.Registerer, log *slog.Logger,
	own map[string]int) (*gateway.Handler, string, func(context.Context) error, error) {
	keys := o.keys
	cfg.Shared = true // a request per goroutine: enqueues and reads share round trips
	client, err := enqueue.NewClient(cfg)
	if err != nil {
		return nil, "", nil, err
	}
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: cfg.Redis, Keys: keys, MaxBody: o.MaxBody, Policy: policy,
		CallbackAllowPrivate: o.CallbackAllowPrivate, Metrics: gateway.NewMetrics(reg), Logger: log.With("component", "gateway")})
	if err != nil {
		return nil, "", nil, usageError("%v", err)
	}
	got, stop, err := gateway.ListenAndServe(ctx, h, gateway.ServerConfig{Addr: addr, TLSCertFile: o.TLSCert, TLSKeyFile: o.TLSKey, Logger: log})
	if err != nil {
		return nil, "", nil, err
	}
	if keys == nil {
		log.Warn("gateway without --keys: any non-empty clientKey is accepted into the default queue (loopback only)", "addr", got)
	} else {
		log.Info("gateway keys loaded", "keys", keys.Names())
	}
	scheme := "http://"
	if o.TLSCert != "" {
		scheme = "https://"
	}
	log.Info("serving AnySolver's API", "url", scheme+got+"/")
	warnUnservedKeys(h, own, log)
	return h, got, stop, nil
}

// warnUnservedKeys logs each key whose queue no running worker serves, nor this process (own):
// its jobs would wait, and end unsolved once its lifetime is over.
func warnUnservedKeys(h *gateway.Handler, own map[string]int, log *slog.Logger) {
	keys, err := h.Unserved()
	if err != nil {
		log.Warn("gateway: could not tell which queues workers serve", "err", err)
		return
	}
	for _, k := range keys {
		if _, served := own[k.Queue]; served {
			continue
		}
		log.Warn("gateway: no worker serves this key's queue: its jobs wait, and end JOB_EXPIRED once the key's lifetime is over; start a worker with --queues "+k.Queue,
			"key", k.Name, "queue", k.Queue, "lifetime", k.Lifetime.String())
	}
}

type gatewayCmdOptions struct {
	redis        redisOptions
	log          logOptions
	gw           gatewayOptions
	Addr         string
	HTTPAddr     string
	HTTPUser     string
	HTTPPassword string
	HTTPTLSCert  string
	HTTPTLSKey   string
	MetricsToken string
	PolicyFile   string
	policy       *policyfile.Policy
}

// Validate checks the options and names what is wrong.
func (o *gatewayCmdOptions) Validate() error {
	if o.Addr == "" {
		return usageError("--addr is required (or set %s)", envName("addr"))
	}
	if o.HTTPAddr != "" && !monitor.IsLoopback(o.HTTPAddr) && (o.HTTPUser == "" || o.HTTPPassword == "") {
		return usageError("--http %s is not a loopback address: set SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD (or --http-user/--http-password) so the metrics are not open to the network", o.HTTPAddr)
	}
	if (o.HTTPTLSCert == "") != (o.HTTPTLSKey == "") {
		return usageError("set both --http-tls-cert and --http-tls-key, or neither")
	}
	if o.MetricsToken != "" && o.MetricsToken == o.HTTPPassword {
		return usageError("--metrics-token must differ from --http-password: it is the scraper's read-only secret")
	}
	o.policy = policyfile.Default()
	if o.PolicyFile != "" {
		p, err := policyfile.Load(o.PolicyFile)
		if err != nil {
			return usageError("--policy: %v", err)
		}
		o.policy = p
	}
	return o.gw.check(o.Addr)
}

func newGatewayCmd(env *Env) *cobra.Command {
	o := &gatewayCmdOptions{}
	cmd := &cobra.Command{
		Use:   "gateway",
		Short: "Serve AnySolver's own API (createTask, getTaskResult, getBalance) in front of the queue",
		Long: `Serve AnySolver's API in front of the queue: POST /createTask, /getTaskResult,
/getBalance, /reportIncorrectRecaptcha, /reportCorrectRecaptcha and
/reportIncorrectImageCaptcha, JSON in and out. A scraper that already calls a captcha
service through a client library changes only its base URL (and its key) and gets
durable jobs, classified retries and no double pay. Workers do the solving.

The clientKey a scraper sends is a gateway key from --keys, never the AnySolver key,
which the gateway never needs. Each key has a name (shown in logs, metrics and the web
UI; the key itself never is) and a queue. Without --keys, on a loopback address only,
any non-empty key is accepted into the default queue.`,
		Example: `  solvequeue gateway                                  # 127.0.0.1:8090, any key, queue default
  solvequeue gateway --addr :8090 --keys keys.yaml --http :8091
  solvequeue gateway --addr :443 --keys keys.yaml --tls-cert tls.crt --tls-key tls.key   # HTTPS, for 2captcha's clients
  curl -s 127.0.0.1:8090/createTask -d '{"clientKey":"k","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.Validate(); err != nil {
				return err
			}
			return runGateway(cmd.Context(), env, o)
		},
	}
	o.redis.register(cmd)
	o.log.register(cmd, "info")
	o.gw.register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Addr, "addr", gatewayAddrDefault, "listen address of the gateway's API")
	f.StringVar(&o.PolicyFile, "policy", "", "the workers' policy file: its queues' budgets make createTask answer ERROR_ZERO_BALANCE when spent, and getBalance what is left")
	f.StringVar(&o.HTTPAddr, "http", "", "serve /metrics, /healthz, /readyz and the console and web UI (read-only) on this address, e.g. 127.0.0.1:8091")
	f.StringVar(&o.HTTPUser, "http-user", "", "basic-auth user for --http (required on a non-loopback address)")
	f.StringVar(&o.HTTPPassword, "http-password", "", "basic-auth password for --http (required on a non-loopback address)")
	f.StringVar(&o.HTTPTLSCert, "http-tls-cert", "", "serve --http over TLS with this certificate (PEM; read again when it changes)")
	f.StringVar(&o.HTTPTLSKey, "http-tls-key", "", "the private key (PEM) of --http-tls-cert")
	f.StringVar(&o.MetricsToken, "metrics-token", "", "bearer token that reads /metrics and /readyz only, for Prometheus (prefer the environment variable: flags show in ps)")
	return cmd
}

func runGateway(ctx context.Context, env *Env, o *gatewayCmdOptions) error {
	log, err := o.log.logger(env.Stderr)
	if err != nil {
		return err
	}
	rc, err := o.redis.open(ctx, 0)
	if err != nil {
		return err
	}
	defer rc.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h, _, stop, err := o.gw.serve(ctx, o.Addr, enqueue.Config{Redis: rc}, o.policy, reg, log, nil)
	if err != nil {
		return err
	}
	defer func() { _ = stop(context.WithoutCancel(ctx)) }()
	if o.HTTPAddr != "" {
		addr, stopHTTP, err := monitor.ListenAndServe(ctx, monitor.Config{Addr: o.HTTPAddr, Redis: rc, Registry: reg,
			User: o.HTTPUser, Password: o.HTTPPassword, MetricsToken: o.MetricsToken, ReadOnly: true, Policy: o.policy,
			TLSCertFile: o.HTTPTLSCert, TLSKeyFile: o.HTTPTLSKey, Logger: log,
			Warnings: func(context.Context) []string { return h.UnservedWarnings() }})
		if err != nil {
			return err
		}
		defer func() { _ = stopHTTP(context.WithoutCancel(ctx)) }()
		scheme := "http://"
		if o.HTTPTLSCert != "" {
			scheme = "https://"
		}
		log.Info("serving metrics and the console (read-only)", "metrics", scheme+addr+monitor.MetricsPath,
			"console", scheme+addr+monitor.ConsolePath+"/")
	}
	<-ctx.Done()
	log.Info("gateway shutting down")
	return nil
}
