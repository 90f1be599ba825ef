// Package metrics holds what the worker tells about itself: the Observer interface and its
// fan-out, the Prometheus collectors named solvequeue_* (Metrics, and the dead-letter and breaker
// collectors read at scrape time), and the bounded label values they use.
//
// It does not decide anything the worker does; it only counts what it is told.
package metrics
