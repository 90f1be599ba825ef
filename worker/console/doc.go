// Package console serves solvequeue's own operator console at /console: jobs ended by state and
// code, money per queue, the breaker, providers, any job by its full ID, and the dead and failed
// jobs with redrive and purge. It is server-rendered HTML (html/template, embedded), with one
// small optional script, readable on a phone.
//
// It reads Redis (asynq's Inspector, the workers' records, dead letters, tally and budgets) and
// changes only what an operator confirms; access control is the caller's (package worker/monitor
// mounts it behind the same rules as asynqmon), CSRF protection and security headers its own.
package console
