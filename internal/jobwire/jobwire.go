// Package jobwire is the format a solve job has between the producer (package enqueue) and the
// worker: the asynq task it travels as (TaskType and its options), the Payload it carries, the
// Record the worker keeps in the task's result, the job's State, and the Outcome a producer
// reads back. Both sides import it; neither imports the other. It also holds the checks a payload
// read from Redis must pass, which are those a submitted job passes.
package jobwire

import (
	"errors"
	"time"

	"github.com/solvequeue/solvequeue/classify"
)

// TaskType is the asynq task type of a solve job.
const TaskType = "anysolver:solve"

// The options a solve job's asynq task is enqueued with, when the producer's configuration does
// not set them.
const (
	RetentionDefault      = 24 * time.Hour
	AttemptTimeoutDefault = 7 * time.Minute
	// BlobTTLDefault is how long the image body of a job without a deadline is kept at most;
	// the worker deletes it when the job ends.
	BlobTTLDefault = 7 * 24 * time.Hour
	// AsynqMaxRetryDefault is the retry count asynq is given. The worker enforces the real,
	// policy-driven budget itself; asynq's count only has to be higher so that asynq never
	// archives a job behind the worker's back.
	AsynqMaxRetryDefault = classify.MaxRetriesLimit + 1
)

// RemoteTaskTTL is how long AnySolver keeps a task's result after createTask: a paid task can be
// polled, and its solution read, until then and never after.
const RemoteTaskTTL = 5 * time.Minute

// ErrJobNotFound is returned for an ID no queue (and no dead-letter queue) holds.
var ErrJobNotFound = errors.New("job not found")
