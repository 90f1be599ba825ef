// Package monitor serves a worker's HTTP side: the asynqmon web UI with redacted payloads under
// /monitoring/, solvequeue's own console (package worker/console) under /console/, Prometheus
// metrics at /metrics, and the /healthz and /readyz probes.
//
// It owns access to that side (read-only without credentials on loopback, basic auth anywhere
// else, a separate read-only token for /metrics, TLS, request limits, a slowdown after failed
// logins) but no metric, job or queue logic: the caller registers solvequeue's collectors and
// asynq's own data is read from Redis.
package monitor
