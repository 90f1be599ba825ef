package metrics

import "github.com/prometheus/client_golang/prometheus"

// BalanceObserver is an Observer that also wants AnySolver's balance each time a worker reads
// it (Metrics is one: the gauge solvequeue_anysolver_balance).
type BalanceObserver interface {
	BalanceRead(balance float64)
}

// BalanceRead sets solvequeue_anysolver_balance.
func (m *Metrics) BalanceRead(balance float64) { m.balance.Set(balance) }

// newBalanceGauge is solvequeue_anysolver_balance, registered by NewMetrics.
func newBalanceGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "solvequeue_anysolver_balance",
		Help: "AnySolver's account balance as this worker last read it (getBalance, every minute).",
	})
}
