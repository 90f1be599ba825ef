package enqueue

import "github.com/solvequeue/solvequeue/internal/jobwire"

// State is where a job is in its life. The README's table of states is the documentation.
type State = jobwire.State

// The states of a job. Solved, Failed and Dead are terminal; every job ends in exactly one.
const (
	StatePending   = jobwire.StatePending   // waiting in its queue (or held while its queue is paused)
	StateScheduled = jobwire.StateScheduled // waiting for a set time
	StateActive    = jobwire.StateActive    // a worker holds it
	StateRetrying  = jobwire.StateRetrying  // waiting for its next attempt after a retry or throttle
	StateSolved    = jobwire.StateSolved    // AnySolver returned a solution
	StateFailed    = jobwire.StateFailed    // permanent: the job as submitted can never succeed
	StateDead      = jobwire.StateDead      // in the dead-letter queue: needs an operator, then a redrive
)

// Outcome is what a producer reads back for a job (Status, Wait): its state, its solution once
// solved, its last error, and its counts of attempts, createTask calls, polls, retries and
// throttles. It is the outcome line of `solvequeue batch`.
type Outcome = jobwire.Outcome

// ErrorInfo is the full original error behind a retry or an end: AnySolver's own errorId, code
// and description, which call met it and on which attempt, and what the classifier decided.
type ErrorInfo = jobwire.ErrorInfo

// ValidationError says which field of a job is wrong and why. Batch submission wraps it with the
// line number.
type ValidationError = jobwire.ValidationError

// MaxProviders is the most providers a job may list to fail over between.
const MaxProviders = jobwire.MaxProviders
