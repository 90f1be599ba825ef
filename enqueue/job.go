package enqueue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// DefaultQueue is the queue a job goes to when it names none.
const DefaultQueue = "default"

// Job is one captcha to solve, as a producer submits it: the job line of `solvequeue batch`.
//
// Task is the AnySolver task object exactly as AnySolver's createTask expects it under "task";
// known task types are checked for their required fields and any other type passes through, so
// new AnySolver types work on day one.
type Job struct {
	// ID is an optional idempotency key: submitting the same ID to the same queue twice gives
	// back the first job and never creates a second. Empty means a fresh random ID.
	ID string `json:"id,omitempty"`
	// Queue is the asynq queue to use. Defaults to DefaultQueue.
	Queue string `json:"queue,omitempty"`
	// Provider is passed to AnySolver as the top-level "provider" (e.g. "CapSolver"): the
	// one-element form of Providers.
	Provider string `json:"provider,omitempty"`
	// Providers lists providers to fail over between, in order: an error that blames the
	// provider (PROVIDER_UNREACHABLE, NO_PROVIDERS_AVAILABLE, ...) sends the next attempt at once
	// to the next one. Empty means Provider, or the queue's list in the worker's policy file.
	Providers []string `json:"providers,omitempty"`
	// Settings is passed to AnySolver as the top-level "settings" object.
	Settings map[string]any `json:"settings,omitempty"`
	// Deadline is an RFC 3339 time or a Go duration counted from submission ("10m"). After it
	// no new AnySolver task is created for the job; a solution already being polled is still kept.
	Deadline string `json:"deadline,omitempty"`
	// MaxRetries overrides the worker policy's retry budget for this job (0 to 100).
	MaxRetries *int `json:"maxRetries,omitempty"`
	// CallbackURL, when set, receives the job's outcome as a signed POST when the job ends
	// (the gateway's getTaskResult answer, with the job's id). It must be an http:// or
	// https:// URL; where it may point is checked by the worker when it delivers.
	CallbackURL string `json:"callbackUrl,omitempty"`
	// Task is the AnySolver task object; "type" is required.
	Task map[string]any `json:"task"`

	// KeyName is the name of the gateway key that submitted the job, shown in the web UI and
	// the callback. It is set by the gateway, never read from a job line, and never sent to
	// AnySolver.
	KeyName string `json:"-"`
	// GatewayTaskID is the taskId the gateway answered for the job (0 when the job did not come
	// through the gateway); the callback carries it. Never read from a job line.
	GatewayTaskID int64 `json:"-"`
}

// ParseJob decodes one job line strictly: unknown top-level fields, trailing data and a missing
// task are errors, and numbers inside the task keep their exact text. It does not validate the
// task; call Validate for that.
func ParseJob(line []byte) (Job, error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var job Job
	if err := dec.Decode(&job); err != nil {
		return Job{}, jobwire.DescribeJSONError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Job{}, &ValidationError{Field: "(line)", Problem: "has data after the JSON object"}
	}
	return job, nil
}

// ParseDeadline resolves a job's Deadline against the submission time: an RFC 3339 time is taken
// as it is, a duration is added to submitted. An empty deadline gives the zero time.
func ParseDeadline(deadline string, submitted time.Time) (time.Time, error) {
	if deadline == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, deadline); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(deadline)
	if err != nil {
		return time.Time{}, &ValidationError{Field: "deadline", Problem: fmt.Sprintf("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor a duration (10m)", deadline)}
	}
	if d <= 0 {
		return time.Time{}, &ValidationError{Field: "deadline", Problem: fmt.Sprintf("duration %q must be positive", deadline)}
	}
	return submitted.Add(d), nil
}
