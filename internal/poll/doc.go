// Package poll decides when a paid remote task is polled: a fixed interval, or a schedule learned
// per task type from recent solve times (adaptive polling).
//
// It keeps statistics in memory only and makes no call itself; the attempt machine asks it how
// long to wait and tells it when a task was ready.
package poll
