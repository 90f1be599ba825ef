package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/deadletter"
)

// LabelOther stands in for a label value outside its bounded set: a code no policy knows (any
// code a provider invents), an unknown outcome, state or method, a malformed task type. A
// misbehaving server cannot blow up the series count. It is lower case, so no AnySolver code
// (UPPER_SNAKE) can be mistaken for it.
const LabelOther = "other"

// maxLabelLen bounds task type label values.
const maxLabelLen = 64

// DeadLetterScrapeTimeout bounds the Redis reads of the dead-letter collector per scrape.
const DeadLetterScrapeTimeout = 2 * time.Second

// Histogram buckets, in seconds or counts, suited to captcha solving: a token takes 5–60 s,
// an image a second or two, and a remote task expires after 5 minutes.
var (
	jobSecondsBuckets  = []float64{0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300}
	callSecondsBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30}
	pollsBuckets       = []float64{0, 1, 2, 3, 5, 8, 12, 20, 30, 50, 100}
	createTaskBuckets  = []float64{0, 1, 2, 3, 5, 8, 13}
)

// Metrics implements Observer with Prometheus collectors named solvequeue_*.
//
// Labels are bounded: they carry a queue, task type, state, error code, AnySolver method,
// call outcome or decision, never a job ID, key, URL or free text. A code is one of the
// policy's table (AnySolver's seed codes, the codes a policy file adds, the transport codes
// such as HTTP_5XX) or one the worker gives itself (JOB_EXPIRED, ...); any other is counted as
// "other", as is an outcome that is neither a code nor a transport outcome ("ok", "canceled",
// "timeout", ...).
type Metrics struct {
	codes       map[string]bool // the code label values, LabelOther aside
	jobsEnded   *prometheus.CounterVec
	calls       *prometheus.CounterVec
	callSeconds *prometheus.HistogramVec
	solveSecs   *prometheus.HistogramVec
	jobSecs     *prometheus.HistogramVec
	polls       prometheus.Histogram
	createTasks prometheus.Histogram
	rescheduled *prometheus.CounterVec
	breakerOpen prometheus.Gauge
	cost        prometheus.Counter
	money       moneyMetrics
	balance     prometheus.Gauge       // balance.go
	callbacks   *prometheus.CounterVec // callback.go
	fairHolds   *prometheus.CounterVec // fairshare.go
}

var _ Observer = (*Metrics)(nil)

// NewMetrics is NewMetricsFor the default policy.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	return NewMetricsFor(reg, classify.Default())
}

// NewMetricsFor creates the collectors of a worker that runs policy and registers them on reg;
// it panics if one is registered already (as prometheus.MustRegister does). The codes of the
// policy's table are the code label values, with the worker's own codes and LabelOther.
// solvequeue_breaker_open is one of the collectors: serve the dead-letter collector, which also
// reports the breaker, from another registry merged over this one (package worker/monitor does).
func NewMetricsFor(reg prometheus.Registerer, policy *classify.Policy) *Metrics {
	m := &Metrics{
		codes: KnownCodes(policy),
		jobsEnded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_jobs_ended_total",
			Help: "Jobs that reached a terminal state, by queue, state and error code (\"\" when solved).",
		}, []string{"queue", "state", "code"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_anysolver_calls_total",
			Help: "AnySolver calls by method and outcome: ok, an errorCode, a transport failure kind or canceled.",
		}, []string{"method", "outcome"}),
		callSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "solvequeue_anysolver_call_seconds",
			Help:    "Duration of AnySolver calls.",
			Buckets: callSecondsBuckets,
		}, []string{"method"}),
		solveSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "solvequeue_solve_seconds",
			Help:    "Time from the remote task's creation to its solution, solved jobs only.",
			Buckets: jobSecondsBuckets,
		}, []string{"task_type"}),
		jobSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "solvequeue_job_seconds",
			Help:    "Time from a job's submission to its terminal outcome.",
			Buckets: jobSecondsBuckets,
		}, []string{"queue", "state"}),
		polls: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "solvequeue_polls_per_job",
			Help:    "getTaskResult calls per ended job.",
			Buckets: pollsBuckets,
		}),
		createTasks: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "solvequeue_create_tasks_per_job",
			Help:    "createTask calls (each one paid) per ended job.",
			Buckets: createTaskBuckets,
		}),
		rescheduled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solvequeue_attempts_rescheduled_total",
			Help: "Attempts that ended in a retry or a throttle, by decision and error code.",
		}, []string{"decision", "code"}),
		breakerOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "solvequeue_breaker_open",
			Help: breakerOpenHelp,
		}),
		cost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "solvequeue_cost_total",
			Help: "Sum of the cost AnySolver reported for ended jobs.",
		}),
		balance:   newBalanceGauge(),
		callbacks: newCallbackCounter(),
		fairHolds: newFairShareCounter(),
	}
	reg.MustRegister(m.jobsEnded, m.calls, m.callSeconds, m.solveSecs, m.jobSecs,
		m.polls, m.createTasks, m.rescheduled, m.breakerOpen, m.cost, m.balance, m.callbacks, m.fairHolds)
	m.money = newMoneyMetrics(reg)
	return m
}

// JobEnded counts a terminal outcome with its durations, calls and cost.
func (m *Metrics) JobEnded(e JobEnd) {
	state := StateLabel(e.State)
	code := ""
	if e.Code != "" {
		code = m.codeLabel(e.Code)
	}
	m.jobsEnded.WithLabelValues(e.Queue, state, code).Inc()
	if e.EndToEnd > 0 {
		m.jobSecs.WithLabelValues(e.Queue, state).Observe(e.EndToEnd.Seconds())
	}
	if e.State == enqueue.StateSolved && e.SolveTime > 0 {
		m.solveSecs.WithLabelValues(TaskTypeLabel(e.TaskType)).Observe(e.SolveTime.Seconds())
	}
	m.polls.Observe(float64(e.Polls))
	m.createTasks.Observe(float64(e.CreateTasks))
	if e.Cost > 0 {
		m.cost.Add(e.Cost)
	}
}

// AttemptRescheduled counts a retry or a throttle.
func (m *Metrics) AttemptRescheduled(decision, code string) {
	switch decision {
	case "retry", "throttle", DecisionFailover:
	default:
		decision = LabelOther
	}
	m.rescheduled.WithLabelValues(decision, m.codeLabel(code)).Inc()
}

// Called counts an AnySolver call and observes its duration.
func (m *Metrics) Called(method, outcome string, took time.Duration) {
	method = methodLabel(method)
	m.calls.WithLabelValues(method, m.outcomeLabel(outcome)).Inc()
	m.callSeconds.WithLabelValues(method).Observe(took.Seconds())
}

// BreakerChanged sets solvequeue_breaker_open to 1 or 0.
func (m *Metrics) BreakerChanged(open bool, _ string) {
	m.breakerOpen.Set(boolFloat(open))
}

const (
	breakerOpenHelp = "1 while the account breaker is open (queues paused after an account error), else 0."
	deadLettersHelp = "Jobs in the durable dead-letter queue (the entries of every queue's solvequeue:{<queue>}:dlq)."
)

var (
	deadLettersDesc = prometheus.NewDesc("solvequeue_dead_letters", deadLettersHelp, nil, nil)
	breakerOpenDesc = prometheus.NewDesc("solvequeue_breaker_open", breakerOpenHelp, nil, nil)
)

type deadLetterCollector struct {
	rc redis.UniversalClient
}

// NewDeadLetterCollector returns a collector that reads Redis at scrape time, within
// DeadLetterScrapeTimeout: solvequeue_dead_letters (the durable dead-letter queue's size) and
// solvequeue_breaker_open (the breaker shared by every worker on that Redis, which a worker's
// own Metrics only sees change when that worker trips or resumes it). A read that fails emits
// nothing for its metric.
//
// Both names are also what Metrics registers (the breaker gauge), so register this collector on
// a registry of its own and let its families win over Metrics' when merging, as package
// worker/monitor does.
func NewDeadLetterCollector(rc redis.UniversalClient) prometheus.Collector {
	return &deadLetterCollector{rc: rc}
}

// Describe sends the two descriptors.
func (c *deadLetterCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- deadLettersDesc
	ch <- breakerOpenDesc
}

// Collect reads the dead-letter queue's size and the breaker from Redis.
func (c *deadLetterCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), DeadLetterScrapeTimeout)
	defer cancel()
	if n, err := deadletter.Count(ctx, c.rc); err == nil {
		ch <- prometheus.MustNewConstMetric(deadLettersDesc, prometheus.GaugeValue, float64(n))
	}
	if state, err := breaker.Read(ctx, c.rc); err == nil {
		ch <- prometheus.MustNewConstMetric(breakerOpenDesc, prometheus.GaugeValue, boolFloat(state.Open))
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// KnownCodes returns the code label values: every code of policy's table and classify's own.
func KnownCodes(policy *classify.Policy) map[string]bool {
	known := map[string]bool{}
	for _, r := range policy.Rules() {
		known[r.ErrorCode] = true
	}
	for _, c := range classify.OwnCodes() {
		known[c] = true
	}
	return known
}

// codeLabel passes a known code and maps any other to LabelOther.
func (m *Metrics) codeLabel(code string) string {
	if m.codes[code] {
		return code
	}
	return LabelOther
}

// outcomeLabel passes the call outcomes the handler reports: "ok", "canceled", a transport
// failure kind, or a known code.
func (m *Metrics) outcomeLabel(outcome string) string {
	switch outcome {
	case "ok", "canceled",
		string(classify.FailureTimeout), string(classify.FailureConnection),
		string(classify.FailureHTTPStatus), string(classify.FailureBadBody),
		string(classify.FailureOversizedBody):
		return outcome
	}
	return m.codeLabel(outcome)
}

func methodLabel(method string) string {
	switch method {
	case string(classify.CallCreateTask), string(classify.CallGetTaskResult), string(classify.CallGetBalance):
		return method
	}
	return LabelOther
}

// StateLabel passes a terminal state and maps any other to LabelOther.
func StateLabel(s enqueue.State) string {
	switch s {
	case enqueue.StateSolved, enqueue.StateFailed, enqueue.StateDead:
		return string(s)
	}
	return LabelOther
}

// TaskTypeLabel passes an AnySolver task type name (letters, digits, '_', '-', '.', at most
// 64 characters) and maps anything else to OTHER.
func TaskTypeLabel(t string) string {
	if len(t) == 0 || len(t) > maxLabelLen {
		return LabelOther
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return LabelOther
		}
	}
	return t
}
