// Package monitor serves a worker's HTTP side: the asynqmon web UI with redacted payloads under
// /monitoring/, solvequeue's own console (package worker/console) under /console/, Prometheus
// metrics at /metrics, and the /healthz and /readyz probes.
//
// It owns access to that side (open on loopback, basic auth anywhere else) but no metric, job or
// queue logic: the caller registers solvequeue's collectors and asynq's own data is read from Redis.
package monitor
