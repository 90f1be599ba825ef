package metrics

import "github.com/prometheus/client_golang/prometheus"

// CallbackObserver is an Observer that also wants each delivery's result: "delivered",
// "retried" (an attempt failed; another follows), "abandoned" (the window passed) or "refused"
// (the URL points where callbacks may not go).
type CallbackObserver interface {
	CallbackDone(result string)
}

// CallbackDone counts a delivery's result in solvequeue_callbacks_total.
func (m *Metrics) CallbackDone(result string) { m.callbacks.WithLabelValues(result).Inc() }

func newCallbackCounter() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "solvequeue_callbacks_total",
		Help: "Callback deliveries by result: delivered, retried, abandoned (the hour passed) or refused (a private address).",
	}, []string{"result"})
}
