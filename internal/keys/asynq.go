package keys

// asynq's layout in Redis, as of the asynq version in go.mod (v0.26, internal/base). solvequeue
// goes behind asynq's API in a few places, each for a reason:
//
//   - The job's record is written into the "result" field of asynq's task hash with our own
//     client (asynq's ResultWriter refuses to write once the handler's context is canceled, and
//     the remote taskId after a paid createTask must land then too), by a Lua script that writes
//     only while the hash exists.
//   - A failed job is redriven by a Lua script that checks the task's "state" field is
//     "completed", removes it from the completed set and deletes the hash, atomically (asynq's
//     Inspector has no compare-and-delete).
//   - Budget and breaker pauses set asynq's paused key inside the same Lua script that marks
//     who paused the queue, so a pause and its mark never part.
//   - Known queues are read from asynq's set of queues.
//
// TestAsynqLayout (asynq_test.go) drives the real asynq against a Redis and checks every name
// below, so an upgrade that changes one fails there, naming it.

// AsynqQueues is asynq's set of every queue a task was enqueued to (what Inspector.Queues reads).
const AsynqQueues = "asynq:queues"

// AsynqTask is asynq's hash of one task.
func AsynqTask(queue, id string) string { return "asynq:{" + queue + "}:t:" + id }

// AsynqPaused is the key whose existence pauses a queue (Inspector.PauseQueue sets it).
func AsynqPaused(queue string) string { return "asynq:{" + queue + "}:paused" }

// AsynqCompleted is asynq's sorted set of a queue's completed tasks kept for their retention.
func AsynqCompleted(queue string) string { return "asynq:{" + queue + "}:completed" }

// AsynqQueuePrefix prefixes every key asynq keeps for one queue.
func AsynqQueuePrefix(queue string) string { return "asynq:{" + queue + "}:" }

// Fields of asynq's task hash, and the one state value solvequeue reads.
const (
	// AsynqResultField holds what the handler wrote with ResultWriter: solvequeue's record.
	AsynqResultField = "result"
	// AsynqStateField holds the task's state as a lower-case word.
	AsynqStateField = "state"
	// AsynqMessageField holds the task message (protobuf).
	AsynqMessageField = "msg"
	// AsynqStateCompleted is the state of a task that succeeded and is kept for its retention.
	AsynqStateCompleted = "completed"
)
