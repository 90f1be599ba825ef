package jobwire

import (
	"encoding/json"
	"time"

	"github.com/solvequeue/solvequeue/internal/ledger"
)

// State is where a job is in its life. The README's table of states is the documentation.
type State string

// The states of a job. Solved, Failed and Dead are terminal; every job ends in exactly one.
const (
	StatePending   State = "pending"   // waiting in its queue (or held while its queue is paused)
	StateScheduled State = "scheduled" // waiting for a set time
	StateActive    State = "active"    // a worker holds it
	StateRetrying  State = "retrying"  // waiting for its next attempt after a retry or throttle
	StateSolved    State = "solved"    // AnySolver returned a solution
	StateFailed    State = "failed"    // permanent: the job as submitted can never succeed
	StateDead      State = "dead"      // in the dead-letter queue: needs an operator, then a redrive
)

// Terminal reports whether s is a final state.
func (s State) Terminal() bool { return s == StateSolved || s == StateFailed || s == StateDead }

// ErrorInfo is the full original error behind a retry or an end: AnySolver's own errorId, code
// and description, which call met it and on which attempt, and what the classifier decided.
type ErrorInfo struct {
	ErrorID          int    `json:"errorId"`
	ErrorCode        string `json:"errorCode"`
	ErrorDescription string `json:"errorDescription"`
	Call             string `json:"call,omitempty"`
	Attempt          int    `json:"attempt,omitempty"`
	Decision         string `json:"decision,omitempty"`
	// At is when the attempt that met the error ended (zero in records written before it was kept).
	At time.Time `json:"at,omitzero"`
}

// Remote is a paid AnySolver task that the job is waiting on. It is written to Redis before the
// first poll so that a worker that dies while polling is replaced by one that resumes polling
// instead of paying again.
type Remote struct {
	TaskID    json.RawMessage `json:"taskId"`
	CreatedAt time.Time       `json:"createdAt"`
}

// Record is the worker's durable per-job record, kept in the asynq task's result field (so it
// lives and dies with the task, survives retries and the archive, and shows in the web UI).
type Record struct {
	State       State           `json:"state"`
	Remote      *Remote         `json:"remote,omitempty"`
	Attempts    int             `json:"attempts"`
	CreateTasks int             `json:"createTasks"`
	Polls       int             `json:"polls"`
	Retries     int             `json:"retries"`
	Throttles   int             `json:"throttles"`
	Solution    json.RawMessage `json:"solution,omitempty"`
	Error       *ErrorInfo      `json:"error,omitempty"`
	Cost        float64         `json:"cost,omitempty"`
	// Budget is the hold the job's last createTask has on its queue's budget, until the remote
	// task ends and it is settled with the cost AnySolver reports.
	Budget *ledger.Reservation `json:"budget,omitempty"`
	// Provider is the provider the last createTask named (the one that solved a solved job).
	Provider string `json:"provider,omitempty"`
	// ProvidersTried lists, in order, the providers the job's createTask calls named, once each
	// time the job moved to another.
	ProvidersTried []string `json:"providersTried,omitempty"`
	// ProviderIndex is where in the job's provider list its next attempt starts.
	ProviderIndex int `json:"providerIndex,omitempty"`
	// Errors is the job's history: every error it met, oldest first, each with its call,
	// attempt, decision and time (Error is the last of them). Only the last ErrorsKept are kept;
	// ErrorsDropped counts the older ones left out, so that a job throttled for hours keeps a
	// small record.
	Errors        []ErrorInfo `json:"errors,omitempty"`
	ErrorsDropped int         `json:"errorsDropped,omitempty"`
	StartedAt     time.Time   `json:"startedAt,omitzero"`
	FinishedAt    time.Time   `json:"finishedAt,omitzero"`
	// ExpiresAt is when a solved job's token stops being accepted by the site (FinishedAt plus
	// the task type's TokenLife); zero for any other outcome.
	ExpiresAt time.Time `json:"expiresAt,omitzero"`
}

// ErrorsKept is how many of a job's errors its record keeps (Record.Errors).
const ErrorsKept = 10

// WithError returns a copy of r whose current error is info, added to its history (the oldest
// entry dropped past ErrorsKept). r itself, its history included, is not changed.
func (r Record) WithError(info ErrorInfo) Record {
	errs := make([]ErrorInfo, 0, min(len(r.Errors)+1, ErrorsKept))
	if drop := len(r.Errors) + 1 - ErrorsKept; drop > 0 {
		r.ErrorsDropped += drop
		errs = append(errs, r.Errors[drop:]...)
	} else {
		errs = append(errs, r.Errors...)
	}
	errs = append(errs, info)
	r.Errors, r.Error = errs, &info
	return r
}

// DecodeRecord reads a record; empty data gives the zero Record.
func DecodeRecord(data []byte) (Record, error) {
	var r Record
	if len(data) == 0 {
		return r, nil
	}
	err := json.Unmarshal(data, &r)
	return r, err
}

// Outcome is what a producer reads back for a job: the outcome line of `solvequeue batch`.
type Outcome struct {
	ID          string          `json:"id"`
	Queue       string          `json:"queue"`
	State       State           `json:"state"`
	Solution    json.RawMessage `json:"solution,omitempty"`
	Error       *ErrorInfo      `json:"error,omitempty"`
	Attempts    int             `json:"attempts"`
	CreateTasks int             `json:"createTasks"`
	Polls       int             `json:"polls"`
	Retries     int             `json:"retries"`
	Throttles   int             `json:"throttles"`
	Cost        float64         `json:"cost,omitempty"`
	// Provider is the provider the last createTask named: for a solved job, the one that solved it.
	Provider string `json:"provider,omitempty"`
	// ProvidersTried lists the providers the job failed over between, in order.
	ProvidersTried []string  `json:"providersTried,omitempty"`
	SubmittedAt    time.Time `json:"submittedAt,omitzero"`
	FinishedAt     time.Time `json:"finishedAt,omitzero"`
	// ExpiresAt is when a solved token stops being accepted by the site that asked for it
	// (reCAPTCHA and hCaptcha 120 s after it was solved, Turnstile 300 s; see TokenLife). Zero
	// for an outcome that is not a solved token, an image's text for one.
	ExpiresAt   time.Time `json:"expiresAt,omitzero"`
	NextRunAt   time.Time `json:"nextRunAt,omitzero"`
	QueuePaused bool      `json:"queuePaused,omitempty"`
	// Line is the 1-based line of the batch file the job came from (batch output only).
	Line int `json:"line,omitempty"`
	// Deadline is the job's deadline, when it has one (a gateway job always has: its key's
	// lifetime); past it no new AnySolver task is created for the job.
	Deadline time.Time `json:"deadline,omitzero"`
}
