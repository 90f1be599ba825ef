package metrics

import "github.com/prometheus/client_golang/prometheus"

// FairShareObserver is an Observer that also wants each job handed back for its gateway key's
// fair share of a worker's slots (package fairshare); key is the key's name, "" for jobs
// submitted without one.
type FairShareObserver interface {
	FairShareHeld(key string)
}

// FairShareHeld counts a job held for its key's fair share in solvequeue_fair_share_holds_total.
// The label is the key's name, never the key.
func (m *Metrics) FairShareHeld(key string) { m.fairHolds.WithLabelValues(key).Inc() }

// FairShareHeld tells each observer that wants it.
func (o Observers) FairShareHeld(key string) {
	for _, x := range o {
		if f, ok := x.(FairShareObserver); ok {
			f.FairShareHeld(key)
		}
	}
}

func newFairShareCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "solvequeue_fair_share_holds_total",
		Help: "Jobs handed back, unpaid and without spending a retry, because their gateway key held its fair share of a worker's slots, by key name (\"\" for jobs without a key).",
	}, []string{"key"})
}
