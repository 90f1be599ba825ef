// Package keys names every Redis key solvequeue writes (this file) and every key, hash field
// and state of asynq's that it reads or writes (asynq.go). Nothing else in the module spells a
// key: a change of layout is a change here, and TestAsynqLayout names what an asynq upgrade
// broke.
//
// A key that belongs to one queue carries the queue as a Redis Cluster hash tag ("{queue}"), so
// on a Cluster it lives in the queue's slot beside asynq's keys of the queue and one Lua script
// may touch both.
package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
)

// Queues is the set of the queues solvequeue's workers serve: each worker adds its queues when
// it starts. With asynq's own list (AsynqQueues) it is how the readers of per-queue keys find
// every queue without scanning keys. A single key: a short list of names.
const Queues = "solvequeue:queues"

// Balance holds the account balance the worker last read from AnySolver, with when.
const Balance = "solvequeue:anysolver:balance"

// DeadLetters is the hash of a queue's durable dead letters: field DeadLetterField, value a
// JSON dead letter. Nothing trims it: an entry leaves by a redrive or a purge.
func DeadLetters(queue string) string { return "solvequeue:{" + queue + "}:dlq" }

// DeadLetterField is a dead letter's field in its queue's DeadLetters hash.
func DeadLetterField(queue, id string) string { return queue + "/" + id }

// DeadLettersRefused counts the dead letters refused because the dead-letter queue was full. A
// single counter for every queue; it only grows.
const DeadLettersRefused = "solvequeue:dlq:refused"

// Failed is a queue's index of failed jobs: a sorted set of job IDs scored by when they failed.
func Failed(queue string) string { return "solvequeue:{" + queue + "}:failed" }

// BodyPrefix prefixes the keys that hold large image bodies.
const BodyPrefix = "solvequeue:blob:"

// Body is the key of a job's image body: BodyPrefix, the queue's hash tag, the job ID, and the
// SHA-256 of the job ID and the body, so two bodies of one ID never share a key and two jobs
// never share one, and the sweep of orphaned bodies (imagebody.Sweeper) reads whose body it is.
func Body(queue, id, body string) string {
	h := sha256.New()
	h.Write([]byte(id))
	h.Write([]byte{0})
	h.Write([]byte(body))
	return BodyPrefix + "{" + queue + "}:" + id + ":" + hex.EncodeToString(h.Sum(nil))
}

// BodyQueuePrefix prefixes every image body key of one queue (Body).
func BodyQueuePrefix(queue string) string { return BodyPrefix + "{" + queue + "}:" }

// BodyJob returns the job ID inside a queue's image body key (Body), or false for a key that
// holds none (not the queue's, or written without the ID).
func BodyJob(queue, key string) (string, bool) {
	rest, ok := strings.CutPrefix(key, BodyQueuePrefix(queue))
	const sum = 1 + 2*sha256.Size // ":" and the hex digest
	if !ok || len(rest) <= sum || rest[len(rest)-sum] != ':' {
		return "", false
	}
	if _, err := hex.DecodeString(rest[len(rest)-sum+1:]); err != nil {
		return "", false
	}
	return rest[:len(rest)-sum], true
}

// IsBody reports whether key can hold an image body: a key under BodyPrefix. A payload's body
// reference is read only when it is one, so a hand-made payload cannot make the worker send any
// other Redis key to AnySolver.
func IsBody(key string) bool {
	return strings.HasPrefix(key, BodyPrefix) && len(key) > len(BodyPrefix)
}

// Budget is a queue's ledger of spend: what createTask calls cost, in the budget's window.
func Budget(queue string) string { return "solvequeue:{" + queue + "}:budget" }

// BudgetPaused marks a queue that its budget paused (so that only such a pause is lifted by the
// budget, never an operator's).
func BudgetPaused(queue string) string { return "solvequeue:{" + queue + "}:budget:paused" }

// BudgetCosts holds the cost last seen per task type in a queue, for reservations.
func BudgetCosts(queue string) string { return "solvequeue:{" + queue + "}:budget:costs" }

// BudgetHeld holds the reservations of a queue's createTask calls not yet settled.
func BudgetHeld(queue string) string { return "solvequeue:{" + queue + "}:budget:held" }

// Breaker is the shared circuit breaker's state.
const Breaker = "solvequeue:breaker"

// BreakerPaused marks a queue that the breaker paused, with the opening that paused it.
func BreakerPaused(queue string) string { return "solvequeue:{" + queue + "}:breaker:paused" }

// Provider is the breaker state of one AnySolver provider, for failover.
func Provider(name string) string { return "solvequeue:provider:" + name }

// Tally is a queue's count of ended jobs in one hour (Unix hour number), by outcome.
func Tally(queue string, hour int64) string {
	return "solvequeue:{" + queue + "}:ended:" + strconv.FormatInt(hour, 10)
}

// ProviderTally is every queue's count of ended jobs in one hour, by provider.
func ProviderTally(hour int64) string {
	return "solvequeue:providers:ended:" + strconv.FormatInt(hour, 10)
}

// GatewayIdempotency maps a gateway request's digest to the job it made, per key name and
// queue, so a retried createTask makes no second job.
func GatewayIdempotency(queue, keyName, digest string) string {
	return "solvequeue:gateway:{" + queue + "}:idem:" + keyName + ":" + digest
}

// GatewayTokenRead marks a solved job's token as read by a gateway client once, so that a token
// first read after it expired is counted once.
func GatewayTokenRead(queue, jobID string) string {
	return "solvequeue:gateway:{" + queue + "}:read:" + jobID
}

// GatewayTaskIDCounter hands out the gateway's numeric taskIds.
const GatewayTaskIDCounter = "solvequeue:gateway:taskid"

// GatewayTaskIDSecret holds the secret that makes the gateway's taskIds unguessable.
const GatewayTaskIDSecret = "solvequeue:gateway:taskid-secret"

// GatewayKeyNames is the set of the gateway key names that have submitted jobs: a taskId's job ID
// is a keyed hash of its key's name and the taskId, so an operator who has only the taskId finds
// the job by trying each name.
const GatewayKeyNames = "solvequeue:gateway:key-names"

// GatewayRate is a gateway key's rate limiter: the theoretical arrival time of its next request
// (GCRA), shared by every gateway on the Redis.
func GatewayRate(queue, keyName string) string {
	return "solvequeue:gateway:{" + queue + "}:rate:" + keyName
}

// GatewayInFlight is the sorted set of a gateway key's jobs not yet ended, scored by when the
// entry expires by itself (Unix ms).
func GatewayInFlight(queue, keyName string) string {
	return "solvequeue:gateway:{" + queue + "}:inflight:" + keyName
}

// GatewayWaiting is the sorted set of a gateway key's jobs not yet taken by a worker, scored as
// GatewayInFlight.
func GatewayWaiting(queue, keyName string) string {
	return "solvequeue:gateway:{" + queue + "}:waiting:" + keyName
}

// GatewayImageBytes is the hash of the image body sizes of a gateway key's jobs not yet ended:
// field a job ID, value its body's bytes.
func GatewayImageBytes(queue, keyName string) string {
	return "solvequeue:gateway:{" + queue + "}:imagebytes:" + keyName
}

// GatewayImageBytesTotal is the sum of GatewayImageBytes' values, kept beside it so that an
// admission reads one number.
func GatewayImageBytesTotal(queue, keyName string) string {
	return "solvequeue:gateway:{" + queue + "}:imagebytes-total:" + keyName
}
