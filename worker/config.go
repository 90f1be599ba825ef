package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/poll"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// Defaults for Config.
const (
	// ConcurrencyDefault is sized for I/O-bound solving: a job spends seconds waiting on
	// AnySolver and microseconds of CPU, so a worker keeps a thousand in flight (asynq's own
	// default, the number of CPUs, would keep two).
	ConcurrencyDefault     = 1000
	ShutdownTimeoutDefault = 10 * time.Second
	RemoteTTLDefault       = jobwire.RemoteTaskTTL
	LifetimeDefault        = 24 * time.Hour
)

// Defaults for PollConfig.
const (
	PollIntervalDefault    = poll.IntervalDefault
	PollMinIntervalDefault = poll.MinIntervalDefault
	PollMaxIntervalDefault = poll.MaxIntervalDefault
)

// PollConfig says when a remote task is polled: a fixed interval, or adaptive polling (the
// default), which learns each task type's solve times and polls where answers are likely.
type PollConfig = poll.Config

// BreakerConfig configures the account breaker: an AnySolver account error (zero balance, a bad
// key, a ban) pauses the worker's queues until a probe of getBalance finds the account works.
type BreakerConfig = breaker.Config

// BreakerState is the account breaker as stored in Redis (Worker.Ready returns it).
type BreakerState = breaker.State

// QueuesDefault returns the queues a worker serves when none are given, with their weights:
// "critical" is fetched six times as often as "low".
func QueuesDefault() map[string]int { return map[string]int{"critical": 6, "default": 3, "low": 1} }

// Config configures a Worker.
type Config struct {
	// Redis is the connection asynq and the worker use. Required.
	Redis redis.UniversalClient
	// AnySolver is the client jobs are solved with. Required.
	AnySolver *anysolver.Client
	// Policy is the policy file (see LoadPolicy): how AnySolver's errors are classified, and
	// each queue's budget and provider list. Defaults to classify.Default() and no queues.
	Policy *Policy
	// Queues maps the queues served to their weights. Defaults to QueuesDefault().
	Queues map[string]int
	// StrictPriority serves a higher-weight queue until it is empty. Defaults to false.
	StrictPriority bool
	// Concurrency is how many jobs run at once. Defaults to 1000.
	Concurrency int
	// ShutdownTimeout is how long a stopping worker lets running jobs finish before it hands
	// them back (with their remote task ids kept). Defaults to 10 s.
	ShutdownTimeout time.Duration
	// Poll says when remote tasks are polled. Defaults to adaptive polling.
	Poll PollConfig
	// Breaker configures the account breaker. Defaults to on.
	Breaker BreakerConfig
	// Observer is told about every outcome and call, for metrics. Defaults to none.
	Observer Observer
	// Logger receives one line per outcome and per breaker change. Defaults to slog.Default().
	Logger *slog.Logger
	// RemoteTTL is how long AnySolver keeps a task's result. Defaults to 5 min.
	RemoteTTL time.Duration
	// Lifetime bounds the throttling of a job that has no deadline of its own. Defaults to 24 h.
	Lifetime time.Duration
	// BalanceInterval is how often AnySolver's balance is read and published (in Redis for the
	// gateway's getBalance, and to an Observer that is a BalanceObserver). Defaults to 1 min.
	BalanceInterval time.Duration
	// CallbackSecret signs the callback deliveries of jobs that did not come through the gateway
	// (X-Solvequeue-Signature, over the delivery's timestamp, its ID and the body), and is what
	// the secret of a gateway key missing from CallbackKeySecrets is derived from. Defaults to
	// none: those deliveries go unsigned.
	CallbackSecret string
	// CallbackKeySecrets maps a gateway key's name to the secret the callbacks of its jobs are
	// signed with (the keys file's callbackSecret). A key not in it gets a secret of its own
	// derived from CallbackSecret, which 'solvequeue keys callback-secret NAME' prints, so no
	// tenant can check, or forge, another's deliveries. The secrets stay in the process: only a
	// key's name reaches Redis. Defaults to none.
	CallbackKeySecrets map[string]string
	// CallbackAllowPrivate lets callbacks reach loopback, private and link-local addresses.
	// Defaults to false.
	CallbackAllowPrivate bool
	// CallbackWindow is how long a callback is retried after its job ended. Defaults to 1 h.
	CallbackWindow time.Duration
	// CallbackBackoff is the wait before a failed callback's first retry, doubling with each
	// try up to 10 min. Defaults to 5 s.
	CallbackBackoff time.Duration
	// DeadLetterLimit bounds the entries of the durable dead-letter queue: at the limit a job
	// that dies stays in asynq's archive only, is counted, and the worker says so at error
	// level (deadletter.Put); nothing already there is trimmed. A negative value means
	// no bound. Defaults to deadletter.LimitDefault (10,000).
	DeadLetterLimit int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Policy == nil {
		c.Policy = policyfile.Default()
	}
	if len(c.Queues) == 0 {
		c.Queues = QueuesDefault()
	} else {
		c.Queues = maps.Clone(c.Queues)
	}
	if c.Concurrency == 0 {
		c.Concurrency = ConcurrencyDefault
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = ShutdownTimeoutDefault
	}
	c.Poll = c.Poll.WithDefaults()
	c.Breaker = c.Breaker.WithDefaults()
	if c.Observer == nil {
		c.Observer = metrics.NopObserver{}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RemoteTTL <= 0 {
		c.RemoteTTL = RemoteTTLDefault
	}
	if c.Lifetime <= 0 {
		c.Lifetime = LifetimeDefault
	}
	if c.BalanceInterval <= 0 {
		c.BalanceInterval = balance.IntervalDefault
	}
	if c.CallbackWindow <= 0 {
		c.CallbackWindow = callback.WindowDefault
	}
	if c.CallbackBackoff <= 0 {
		c.CallbackBackoff = callback.BackoffDefault
	}
	if c.DeadLetterLimit == 0 {
		c.DeadLetterLimit = deadletter.LimitDefault
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	if c.Redis == nil {
		return errors.New("worker: Redis is required")
	}
	if c.AnySolver == nil {
		return errors.New("worker: AnySolver is required (set ANYSOLVER_API_KEY)")
	}
	if c.Concurrency < 1 {
		return fmt.Errorf("worker: Concurrency must be at least 1, got %d", c.Concurrency)
	}
	if c.ShutdownTimeout < 0 {
		return fmt.Errorf("worker: ShutdownTimeout must not be negative, got %s", c.ShutdownTimeout)
	}
	for q, w := range c.Queues {
		if !queuereg.ValidName(q) {
			return fmt.Errorf("worker: queue name %q must be 1-64 letters, digits, '_', '.', ':' or '-'", q)
		}
		if w < 1 {
			return fmt.Errorf("worker: queue %q must have a weight of at least 1, got %d", q, w)
		}
	}
	return nil
}
