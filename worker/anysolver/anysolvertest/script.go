package anysolvertest

import (
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// DefaultSolveTime is how long DefaultBehavior takes to solve a token task.
const DefaultSolveTime = 2 * time.Second

// Task is what the fake saw at one createTask call; a Script decides its Behavior.
type Task struct {
	// Type is the task's "type".
	Type string
	// Fields is the whole task object, as decoded JSON (numbers are float64).
	Fields map[string]any
	// Provider and Settings are the request's top-level "provider" and "settings", if any.
	Provider string
	Settings map[string]any
	// Key identifies the task across retries: Fields["websiteKey"] if it is a non-empty string,
	// else "h:" and a hash of the task's JSON.
	Key string
	// Attempt counts the createTask calls with this Key before this one (0 on the first),
	// whatever they were answered.
	Attempt int
}

// Behavior is how the fake treats one createTask call and the remote task it creates.
// The zero Behavior creates a task that is ready at its first poll.
type Behavior struct {
	// CreateError answers createTask with this errorCode instead of creating a task (not charged).
	// Its errorId is CreateErrorID if set, else the seed table's, else 1.
	CreateError   string
	CreateErrorID int
	// CreateErrorDescription replaces the seed table's description of CreateError.
	CreateErrorDescription string
	// CreateHTTP answers createTask with this transport fault instead (not charged).
	CreateHTTP Fault
	// Immediate answers "ready" with the solution inside the createTask answer.
	Immediate bool
	// SolveTime is how long after creation the task is ready.
	SolveTime time.Duration
	// SolveTimeFunc, when set, is called once per task and overrides SolveTime.
	SolveTimeFunc func() time.Duration
	// PollError answers every getTaskResult of the task with this errorCode (e.g. TASK_NOT_FOUND).
	PollError string
	// PollFailed makes the task end in status "failed" with this errorCode, once its solve time passed.
	PollFailed string
	// PollHTTP answers every getTaskResult of the task with this transport fault.
	PollHTTP Fault
	// Solution is the solution object. Defaults to {"text": ...} for ImageToTextTask and
	// {"gRecaptchaResponse": ..., "token": ...} for every other type, the task id inside.
	Solution map[string]any
}

// DefaultBehavior solves every task: ImageToTextTask at once inside createTask, every other
// type after DefaultSolveTime, through polling.
func DefaultBehavior(t Task) Behavior {
	if isImageTask(t.Type) {
		return Behavior{Immediate: true}
	}
	return Behavior{SolveTime: DefaultSolveTime}
}

func isImageTask(typ string) bool { return strings.EqualFold(typ, "ImageToTextTask") }

// LogNormal returns a SolveTimeFunc drawing log-normal times with the given median and sigma
// (the spread of the time's logarithm; 0.5 is a realistic captcha spread), seeded for
// repeatable runs. It is safe for concurrent use.
func LogNormal(median time.Duration, sigma float64, seed int64) func() time.Duration {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	return func() time.Duration {
		mu.Lock()
		z := rng.NormFloat64()
		mu.Unlock()
		return time.Duration(float64(median) * math.Exp(sigma*z))
	}
}
