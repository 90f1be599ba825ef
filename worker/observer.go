package worker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/metrics"
)

// Observer is told what the worker does, for metrics: every outcome, reschedule, AnySolver call,
// breaker change and budget read. Implementations must be safe for concurrent use and cheap.
type Observer = metrics.Observer

// JobEnd describes a job that reached a terminal state (Observer.JobEnded).
type JobEnd = metrics.JobEnd

// NopObserver does nothing with what it is told. Embed it in an Observer of your own to
// implement only the methods you need.
type NopObserver = metrics.NopObserver

// Metrics is an Observer with Prometheus collectors named solvequeue_*.
type Metrics = metrics.Metrics

// NewMetrics is NewMetricsFor the default policy.
func NewMetrics(reg prometheus.Registerer) *Metrics { return metrics.NewMetrics(reg) }

// NewMetricsFor creates the collectors of a worker that runs policy and registers them on reg;
// it panics if one is registered already (as prometheus.MustRegister does).
func NewMetricsFor(reg prometheus.Registerer, policy *classify.Policy) *Metrics {
	return metrics.NewMetricsFor(reg, policy)
}
