package monitor

import (
	"errors"
	"sort"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// overlay gathers base and top and keeps top's family where both have one, so that a value
// read from Redis at scrape time (the shared breaker) wins over a worker's own gauge.
type overlay struct{ top, base prometheus.Gatherer }

// Gather returns the merged families sorted by name, and both gatherers' errors.
func (o overlay) Gather() ([]*dto.MetricFamily, error) {
	top, errTop := o.top.Gather()
	base, errBase := o.base.Gather()
	seen := make(map[string]bool, len(top))
	for _, f := range top {
		seen[f.GetName()] = true
	}
	out := top
	for _, f := range base {
		if !seen[f.GetName()] {
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].GetName() < out[j].GetName() })
	return out, errors.Join(errTop, errBase)
}

// unchecked registers a collector without describing it. asynq's queue metrics collector
// describes itself by collecting, which reads every queue from Redis: registered as is, it
// would make NewHandler wait for Redis (seconds of retries when Redis is down).
type unchecked struct{ prometheus.Collector }

// Describe sends nothing, which makes the collector an unchecked one.
func (unchecked) Describe(chan<- *prometheus.Desc) {}
