// Package gateway is the producer's side over HTTP: AnySolver's own protocol (createTask,
// getTaskResult, getBalance and the report methods, POST /{method}, JSON in and out) served in
// front of the queue, so that a scraper in any language changes only its base URL to get
// durable jobs, classified retries and no double pay.
//
// It owns the gateway keys, the mapping from the taskIds it answers to the jobs it submitted,
// idempotent createTask and the HTTP hardening. It never imports the worker and never sees the
// AnySolver key: jobs go in through enqueue.Client, outcomes come back through it.
package gateway
