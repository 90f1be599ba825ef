package jobwire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"time"

	"github.com/solvequeue/solvequeue/internal/keys"
)

// PayloadVersion is the version of the Payload format this package writes and reads.
const PayloadVersion = 1

// Payload is what a solve job carries in Redis: the job minus its ID and queue (asynq keeps
// those), with the deadline resolved to a time. It never carries the AnySolver key. A large
// image body travels under its own Redis key (BodyRef) so that asynq's heartbeat, which rewrites
// every active task with its payload every 5 s, stays cheap.
type Payload struct {
	V           int            `json:"v"`
	Task        map[string]any `json:"task"`
	BodyRef     string         `json:"bodyRef,omitempty"`
	Provider    string         `json:"provider,omitempty"`
	Providers   []string       `json:"providers,omitempty"`
	Settings    map[string]any `json:"settings,omitempty"`
	Deadline    time.Time      `json:"deadline,omitzero"`
	MaxRetries  *int           `json:"maxRetries,omitempty"`
	SubmittedAt time.Time      `json:"submittedAt"`
	// CallbackURL receives the outcome when the job ends (see Job.CallbackURL).
	CallbackURL string `json:"callbackUrl,omitempty"`
	// KeyName is the gateway key the job came through, for the web UI; never sent to AnySolver.
	KeyName string `json:"keyName,omitempty"`
	// GatewayTaskID is the taskId the gateway answered for the job, for the callback.
	GatewayTaskID int64 `json:"gatewayTaskId,omitempty"`
	// Redrives counts the times an operator ran the job again (a dead-letter or failed-job
	// redrive). Each run ends in an outcome of its own, numbered OutcomeSeq. A payload without
	// the field was never redriven.
	Redrives int `json:"redrives,omitempty"`
	// DeadlineSpan is how long the job's deadline first gave it after its submission (in
	// nanoseconds): kept by its first redrive so that every later redrive gives the job a
	// lifetime as long as the first, not what was left of it. Zero: the job was never redriven
	// (the span is Deadline - SubmittedAt) or it had no positive span.
	DeadlineSpan time.Duration `json:"deadlineSpan,omitempty"`
}

// OutcomeSeq is the sequence number of the outcome this run of the job ends in: 1 for the job as
// submitted, one more for each redrive. A callback carries it, so that a receiver that gets the
// deliveries of two runs out of order can tell the latest.
func (p Payload) OutcomeSeq() int { return p.Redrives + 1 }

// TaskType returns the AnySolver task type, e.g. "RecaptchaV2TaskProxyless".
func (p Payload) TaskType() string {
	s, _ := p.Task["type"].(string)
	return s
}

// DecodePayload reads a payload from Redis and checks it as strictly as a submitted job, so
// that a poisoned task (garbage put into Redis by hand, a payload from a future version, a
// bodyRef naming a key that is not an image body) is refused with a reason instead of reaching
// AnySolver.
func DecodePayload(data []byte) (Payload, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return Payload{}, fmt.Errorf("payload is not a solve job: %w", DescribeJSONError(err))
	}
	if p.V != PayloadVersion {
		return Payload{}, fmt.Errorf("payload version %d is not %d: submitted by another solvequeue version", p.V, PayloadVersion)
	}
	if p.BodyRef != "" && !keys.IsBody(p.BodyRef) {
		return Payload{}, fmt.Errorf("payload is not a valid solve job: bodyRef %q is not under %s", p.BodyRef, keys.BodyPrefix)
	}
	task := p.Task
	if p.BodyRef != "" && task != nil {
		// The body is fetched from Redis by the worker; check the rest with a stand-in.
		task = maps.Clone(task)
		task["body"] = "AA=="
	}
	if err := ValidateTask(task); err != nil {
		return Payload{}, fmt.Errorf("payload is not a valid solve job: %w", err)
	}
	if err := ValidateProviders(p.Provider, p.Providers); err != nil {
		return Payload{}, fmt.Errorf("payload is not a valid solve job: %w", err)
	}
	return p, nil
}
