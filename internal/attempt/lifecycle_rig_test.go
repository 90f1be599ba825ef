package attempt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/classify"
)

// The rig of the lifecycle model (lifecycle_model_test.go): a virtual clock, a scriptable fake
// AnySolver that counts what each job paid, and worker "processes" whose death at a chosen step
// of an attempt is a Redis hook or an HTTP answer that never comes back.

// vclock is the virtual clock every part of the model reads: the worker (Config.Now), the
// producer (enqueue.Config.Now) and the fake AnySolver, which moves it one poll interval on
// every getTaskResult.
type vclock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *vclock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *vclock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// advanceTo moves the clock to t when t is later.
func (c *vclock) advanceTo(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.t) {
		c.t = t
	}
}

// answerKind is what the fake AnySolver answers to one call.
type answerKind int

const (
	ansTaskID     answerKind = iota // createTask: a remote task id (paid)
	ansReady                        // createTask: solved at once (paid); getTaskResult: a solution
	ansProcessing                   // getTaskResult: still busy, n times
	ansCode                         // an error answer with code and its seed errorId
	ansFailed                       // getTaskResult: status "failed" with code
	ansHTTP502                      // an HTML 502 from a proxy in front of AnySolver
	ansReset                        // the connection is reset before any answer
	ansTruncated                    // a JSON answer cut short (createTask: the task was created, so paid)
)

// answer is one scripted answer.
type answer struct {
	kind    answerKind
	code    string
	errorID int
	n       int // ansProcessing: how many polls in a row
}

func (a answer) String() string {
	switch a.kind {
	case ansTaskID:
		return "taskId"
	case ansReady:
		return "ready"
	case ansProcessing:
		return fmt.Sprintf("processing×%d", a.n)
	case ansCode:
		return a.code
	case ansFailed:
		return "failed:" + a.code
	case ansHTTP502:
		return "HTTP 502"
	case ansReset:
		return "reset"
	default:
		return "truncated"
	}
}

// remoteTask is a task the fake AnySolver created: paid for.
type remoteTask struct {
	id      int
	job     string
	created time.Time
	ended   bool // AnySolver said it is over (a solution, status failed, an errorId 1 code)
	// lost says the worker cannot know of it through no fault of its own: its process died
	// between AnySolver's answer and the save of its id (the README's crash window), or the
	// answer that named it was cut short. Another createTask for the job is then allowed.
	lost bool
}

// crashPoint is where the next attempt's process dies: at an HTTP call or around the k-th Redis
// command of the attempt.
type crashPoint struct {
	where string // "create-before", "create-after", "redis-before", "redis-after"
	k     int    // the Redis command, counted from 1
}

func (c crashPoint) String() string {
	if strings.HasPrefix(c.where, "redis") {
		return fmt.Sprintf("%s#%d", c.where, c.k)
	}
	return c.where
}

// fakeAnySolver is AnySolver as the model scripts it, on a loopback httptest server. Each
// process calls it under its own path prefix ("/p3/createTask"), so that a dead process's calls
// can be told apart and have no effect.
type fakeAnySolver struct {
	mu        sync.Mutex
	clock     *vclock
	policy    *classify.Policy
	pollStep  time.Duration // virtual time per getTaskResult: the poll interval being modelled
	ttl       time.Duration
	nextID    int
	remotes   map[int]*remoteTask
	byJob     map[string][]*remoteTask
	creates   map[string]int // createTask calls that reached AnySolver, by job
	creations map[string]int // tasks created (paid), by job
	create    map[string][]answer
	polls     map[string][]answer
	last      map[string]answer // the last answer each job got
	dead      map[int]bool      // dead processes
	crash     map[int]crashPoint
	crashed   map[int]chan struct{}
	balance   float64 // what getBalance answers
	// onPoll runs at a job's next getTaskResult, once: asynq's timeout cutting the attempt short.
	onPoll map[string]func()
	// violations are double payments seen at createTask: a job paying for a task while an
	// earlier one, which the worker knew of, was still alive.
	violations []string
}

func newFakeAnySolver(clock *vclock, policy *classify.Policy, pollStep, ttl time.Duration) *fakeAnySolver {
	return &fakeAnySolver{clock: clock, policy: policy, pollStep: pollStep, ttl: ttl, nextID: 1000,
		remotes: map[int]*remoteTask{}, byJob: map[string][]*remoteTask{}, creates: map[string]int{},
		creations: map[string]int{}, create: map[string][]answer{}, polls: map[string][]answer{},
		last: map[string]answer{}, dead: map[int]bool{}, crash: map[int]crashPoint{}, crashed: map[int]chan struct{}{}, onPoll: map[string]func(){}}
}

// script queues the answers of a job's next calls; a job without one gets a task id and a solution.
func (f *fakeAnySolver) script(job string, create []answer, polls []answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.create[job], f.polls[job] = create, polls
	delete(f.last, job)
}

// die marks process p dead (the caller holds mu) and says so to whoever waits on it.
func (f *fakeAnySolver) die(p int) {
	if f.dead[p] {
		return
	}
	f.dead[p] = true
	if ch := f.crashed[p]; ch != nil {
		close(ch)
	}
}

// loseUnsaved marks the job's live remote tasks that its record does not name as lost: the
// process that paid for them died before their id was saved. saved is the remote id the record
// names (0: none).
func (f *fakeAnySolver) loseUnsaved(job string, saved int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.byJob[job] {
		if !r.ended && r.id != saved {
			r.lost = true
		}
	}
}

type fakeRequest struct {
	Task   map[string]any `json:"task"`
	TaskID json.Number    `json:"taskId"`
}

func (f *fakeAnySolver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) != 2 || !strings.HasPrefix(parts[0], "p") {
		http.NotFound(w, r)
		return
	}
	proc, _ := strconv.Atoi(strings.TrimPrefix(parts[0], "p"))
	var req fakeRequest
	dec := json.NewDecoder(r.Body)
	dec.UseNumber()
	_ = dec.Decode(&req)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.dead[proc] {
		reset(w)
		return
	}
	switch parts[1] {
	case "createTask":
		f.createTask(w, proc, req)
	case "getTaskResult":
		f.getTaskResult(w, req)
	case "getBalance":
		writeJSON(w, map[string]any{"errorId": 0, "balance": f.balance})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeAnySolver) createTask(w http.ResponseWriter, proc int, req fakeRequest) {
	job, _ := req.Task["websiteKey"].(string)
	a := answer{kind: ansTaskID}
	if q := f.create[job]; len(q) > 0 {
		a, f.create[job] = q[0], q[1:]
	}
	if c, ok := f.crash[proc]; ok && c.where == "create-before" {
		f.die(proc)
		reset(w)
		return
	}
	f.creates[job]++
	paid := a.kind == ansTaskID || a.kind == ansReady || a.kind == ansTruncated
	var rt *remoteTask
	if paid {
		now := f.clock.Now()
		for _, old := range f.byJob[job] {
			if !old.ended && !old.lost && now.Sub(old.created) < f.ttl-resumeMargin {
				f.violations = append(f.violations, fmt.Sprintf("job %s paid for a new task while its task %d (created %s ago, its id known to the worker) was alive",
					job, old.id, now.Sub(old.created)))
			}
		}
		f.nextID++
		rt = &remoteTask{id: f.nextID, job: job, created: now, ended: a.kind == ansReady, lost: a.kind == ansTruncated}
		f.remotes[rt.id] = rt
		f.byJob[job] = append(f.byJob[job], rt)
		f.creations[job]++
	}
	if c, ok := f.crash[proc]; ok && c.where == "create-after" {
		if rt != nil && !rt.ended {
			rt.lost = true
		}
		f.die(proc)
		reset(w)
		return
	}
	f.last[job] = a
	switch a.kind {
	case ansTaskID:
		writeJSON(w, map[string]any{"errorId": 0, "taskId": rt.id})
	case ansReady:
		writeJSON(w, map[string]any{"errorId": 0, "taskId": rt.id, "status": "ready",
			"solution": map[string]any{"token": "tok-" + job}, "cost": "0.001"})
	default:
		f.answerFault(w, a)
	}
}

func (f *fakeAnySolver) getTaskResult(w http.ResponseWriter, req fakeRequest) {
	f.clock.Advance(f.pollStep)
	id, _ := strconv.Atoi(req.TaskID.String())
	rt := f.remotes[id]
	if rt == nil || rt.ended || f.clock.Now().Sub(rt.created) >= f.ttl {
		if rt != nil {
			rt.ended = true
			f.last[rt.job] = answer{kind: ansCode, code: classify.CodeTaskNotFound, errorID: 1}
		}
		writeJSON(w, map[string]any{"errorId": 1, "errorCode": classify.CodeTaskNotFound, "errorDescription": "Task ID not found or expired."})
		return
	}
	if fn := f.onPoll[rt.job]; fn != nil {
		delete(f.onPoll, rt.job)
		fn()
	}
	a := answer{kind: ansReady}
	if q := f.polls[rt.job]; len(q) > 0 {
		a = q[0]
		if a.kind == ansProcessing && a.n > 1 {
			q[0].n--
		} else {
			f.polls[rt.job] = q[1:]
		}
	}
	f.last[rt.job] = a
	switch a.kind {
	case ansProcessing:
		writeJSON(w, map[string]any{"errorId": 0, "status": "processing"})
	case ansReady:
		rt.ended = true
		writeJSON(w, map[string]any{"errorId": 0, "status": "ready", "solution": map[string]any{"token": "tok-" + rt.job}, "cost": "0.001"})
	case ansFailed:
		rt.ended = true
		writeJSON(w, map[string]any{"errorId": a.errorID, "status": "failed", "errorCode": a.code, "errorDescription": "failed: " + a.code})
	case ansCode:
		// AnySolver's errorId 1 codes end the task, but for a rate limit; errorId 2 is its own
		// passing trouble.
		if a.errorID == 1 && f.policy.Classify(classify.Error{ErrorID: 1, ErrorCode: a.code}).Decision != classify.Throttle {
			rt.ended = true
		}
		f.answerFault(w, a)
	default:
		f.answerFault(w, a)
	}
}

func (f *fakeAnySolver) answerFault(w http.ResponseWriter, a answer) {
	switch a.kind {
	case ansCode:
		writeJSON(w, map[string]any{"errorId": a.errorID, "errorCode": a.code, "errorDescription": "scripted " + a.code})
	case ansHTTP502:
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
	case ansReset:
		reset(w)
	default: // ansTruncated
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errorId":0,"taskId":`))
	}
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// reset closes the connection without an answer.
func reset(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// errProcessDead is what a dead process's Redis commands get: nothing of them reaches Redis.
var errProcessDead = errors.New("model: this worker process is dead")

// errRedisTrouble is a passing Redis failure, as go-redis reports a reset connection.
var errRedisTrouble = errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")

// procHook is a process's Redis: it counts the attempt's commands, kills the process at its crash
// point, fails commands during Redis trouble, and after death lets nothing through.
type procHook struct {
	fake *fakeAnySolver
	proc int
	mu   sync.Mutex
	n    int // commands of the current attempt
	fail int // the next fail commands get errRedisTrouble
	// failScripts fails every script the attempt runs (the record's saves) with errRedisTrouble.
	failScripts bool
}

// arm sets the faults of the attempt about to run: its commands counted from 1, the first one
// failed when trouble, every script failed when failScripts, and its crash point (nil: none).
func (h *procHook) arm(trouble, failScripts bool, crash *crashPoint) {
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n, h.fail, h.failScripts = 0, 0, failScripts
	if trouble {
		h.fail = 1 // the attempt's first Redis command (reading the record) fails
	}
	delete(h.fake.crash, h.proc)
	if crash != nil {
		h.fake.crash[h.proc] = *crash
	}
}

// disarm ends the faults of the attempt that returned: one it did not reach (a crash point past
// its last Redis command) would otherwise fire in whatever the process does next (a breaker
// probe, a redrive).
func (h *procHook) disarm() {
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.fail, h.failScripts = 0, false
	delete(h.fake.crash, h.proc)
}

func (h *procHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *procHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		after, err := h.before()
		if err == nil && h.scriptFails(cmd) {
			err = errRedisTrouble
		}
		if err != nil {
			cmd.SetErr(err)
			return err
		}
		err = next(ctx, cmd)
		if after {
			h.fake.mu.Lock()
			h.fake.die(h.proc)
			h.fake.mu.Unlock()
			cmd.SetErr(errProcessDead)
			return errProcessDead
		}
		return err
	}
}

func (h *procHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		after, err := h.before()
		if err != nil {
			for _, c := range cmds {
				c.SetErr(err)
			}
			return err
		}
		err = next(ctx, cmds)
		if after {
			h.fake.mu.Lock()
			h.fake.die(h.proc)
			h.fake.mu.Unlock()
			return errProcessDead
		}
		return err
	}
}

func (h *procHook) scriptFails(cmd redis.Cmder) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	name := cmd.Name()
	return h.failScripts && (name == "evalsha" || name == "eval")
}

// before counts a command and says whether the process dies after it, or the error it gets
// instead of running.
func (h *procHook) before() (dieAfter bool, err error) {
	h.fake.mu.Lock()
	defer h.fake.mu.Unlock()
	if h.fake.dead[h.proc] {
		return false, errProcessDead
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.n++
	if h.fail > 0 {
		h.fail--
		return false, errRedisTrouble
	}
	c, ok := h.fake.crash[h.proc]
	if !ok || c.k != h.n {
		return false, nil
	}
	switch c.where {
	case "redis-before":
		h.fake.die(h.proc)
		return false, errProcessDead
	case "redis-after":
		return true, nil
	}
	return false, nil
}

// modelRedis is a process's Redis client as the worker sees it: a plain client, so that each
// command goes through the process's hook on the caller's goroutine (go-redis's autopipeliner
// would batch them on a goroutine of its own; a call still waits for its own answer either way).
type modelRedis struct{ *redis.Client }

func (modelRedis) AutoPipeline() (*redis.AutoPipeliner, error) {
	return nil, errors.New("model: no autopipeline")
}
