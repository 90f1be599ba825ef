// Package anysolvertest is a scriptable fake AnySolver, like net/http/httptest: the real wire protocol with
// scripted error answers, transport faults, solve times and a settable clock, cheap enough for 10,000 tasks in flight.
// It holds no client and no retry logic; tests, the demo, the benchmarks and `solvequeue fake-anysolver` run the real client against it.
package anysolvertest

import (
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path"
	"sync"
	"time"
)

// Defaults for Options, and the fake's fixed limits.
const (
	DefaultBalance   = 100.0
	DefaultCost      = 0.001
	DefaultResultTTL = 5 * time.Minute
	// MaxPolls is how many getTaskResult calls one task answers; the next gets TASK_NOT_FOUND
	// and the task is forgotten.
	MaxPolls = 120
	// maxRequestBytes bounds a request body; a longer one gets INVALID_TASK_DATA.
	maxRequestBytes = 32 << 20
)

// Options configure a Server. The zero Options give an account of DefaultBalance that accepts
// any non-empty key and solves every task with DefaultBehavior.
type Options struct {
	// APIKeys are the accepted clientKeys; any other gets ERROR_KEY_DOES_NOT_EXIST.
	// Defaults to accepting any non-empty key.
	APIKeys []string
	// Balance is the starting balance. Defaults to DefaultBalance; see ZeroBalance for an empty account.
	Balance float64
	// ZeroBalance starts the account at 0 (Balance is then ignored), so createTask answers
	// ERROR_ZERO_BALANCE until SetBalance.
	ZeroBalance bool
	// Cost is charged at each successful createTask and reported in the ready answer as "cost",
	// as a string such as "0.0010" for every other task and a number for the rest.
	// Defaults to DefaultCost.
	Cost float64
	// ResultTTL is how long after creation a task is remembered; later polls get TASK_NOT_FOUND.
	// Defaults to DefaultResultTTL.
	ResultTTL time.Duration
	// Script decides each createTask. Defaults to DefaultBehavior.
	Script func(t Task) Behavior
	// Now is the fake's clock, for solve times and expiry. Defaults to time.Now; see Clock.
	Now func() time.Time
	// Seed seeds the random parts of task ids.
	Seed int64
}

// Server is the fake AnySolver, an http.Handler serving POST /createTask, /getTaskResult and
// /getBalance (the last path segment names the method, so it can be mounted under a prefix).
// It is safe for concurrent use. All state sits behind one mutex, tasks are plain records and
// solve times are timestamps: no goroutine or timer per task. Memory is freed by the calls
// themselves: an expired task when it is polled, and all expired tasks by a sweep that
// createTask and getTaskResult run at most every min(ResultTTL/4, 30s) of the fake's clock.
//
// Task ids alternate between numbers (odd tasks) and UUID-like strings (even tasks), and a
// numeric id must come back as a JSON number: sent as a string it is not found. Error answers
// come with HTTP 200 and the seed table's errorId. A task's "failed" answer carries errorId 0
// for numeric ids and the code's errorId for string ids, as the protocol allows.
type Server struct {
	cost float64
	ttl  time.Duration
	now  func() time.Time

	closed    chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	balance     float64
	charged     float64
	keys        map[string]struct{}
	script      func(Task) Behavior
	outage      Fault
	outageUntil time.Time
	calls       [numMethods]int
	perKey      map[string]*keyStats
	tasks       map[string]*remoteTask
	rng         *rand.Rand
	seq         uint64
	counts      Stats // Creates, Created, Solved, Failed, InFlight
	lastSweep   time.Time
}

// New returns a fake AnySolver with opts' defaults filled in.
func New(opts Options) *Server {
	s := &Server{
		cost:    opts.Cost,
		ttl:     opts.ResultTTL,
		now:     opts.Now,
		closed:  make(chan struct{}),
		balance: opts.Balance,
		script:  opts.Script,
		perKey:  make(map[string]*keyStats),
		tasks:   make(map[string]*remoteTask),
		rng:     rand.New(rand.NewPCG(uint64(opts.Seed), 0xa5a5)),
	}
	if s.cost == 0 {
		s.cost = DefaultCost
	}
	if s.ttl <= 0 {
		s.ttl = DefaultResultTTL
	}
	if s.now == nil {
		s.now = time.Now
	}
	if opts.ZeroBalance {
		s.balance = 0
	} else if s.balance == 0 {
		s.balance = DefaultBalance
	}
	if s.script == nil {
		s.script = DefaultBehavior
	}
	s.SetAPIKeys(opts.APIKeys...)
	return s
}

// NewServer starts New(opts) on a loopback httptest.Server; close it with ts.Close.
func NewServer(opts Options) (*Server, *httptest.Server) {
	s := New(opts)
	return s, httptest.NewServer(s)
}

// Close releases requests held by the hang and endless faults, so an http.Server or
// httptest.Server shutting down does not wait for clients that never leave. The fake still
// answers afterwards, but those faults then end at once.
func (s *Server) Close() { s.closeOnce.Do(func() { close(s.closed) }) }

// The methods, as indexes of Server.calls.
const (
	methodCreateTask = iota
	methodGetTaskResult
	methodGetBalance
	numMethods
)

var methodNames = [numMethods]string{"createTask", "getTaskResult", "getBalance"}

func methodIndex(name string) (int, bool) {
	for i, n := range methodNames {
		if n == name {
			return i, true
		}
	}
	return 0, false
}

// ServeHTTP answers one AnySolver call. Unknown methods get 404 and other HTTP verbs 405,
// both with a JSON error; during an outage every call gets the outage's fault.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, ok := methodIndex(path.Base(r.URL.Path))
	now := s.now()
	s.mu.Lock()
	if ok {
		s.calls[m]++
	}
	fault := s.outage
	if !now.Before(s.outageUntil) {
		fault = FaultNone
	}
	s.mu.Unlock()

	switch {
	case fault != FaultNone:
		s.serveFault(w, r, fault)
		return
	case !ok:
		writeJSON(w, http.StatusNotFound, wireAnswer{ErrorID: 1, ErrorCode: "METHOD_NOT_FOUND",
			ErrorDescription: "no such method: use /createTask, /getTaskResult or /getBalance"})
		return
	case r.Method != http.MethodPost:
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, wireAnswer{ErrorID: 1, ErrorCode: "METHOD_NOT_ALLOWED",
			ErrorDescription: "AnySolver methods take POST with a JSON body"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxRequestBytes))
	if err != nil {
		writeError(w, "INVALID_TASK_DATA", 0, "request body could not be read: "+err.Error())
		return
	}
	switch m {
	case methodCreateTask:
		s.createTask(w, r, body, now)
	case methodGetTaskResult:
		s.getTaskResult(w, r, body, now)
	case methodGetBalance:
		s.getBalance(w, body)
	}
}

// SetBalance sets the account's balance, e.g. to 0 to make createTask answer ERROR_ZERO_BALANCE.
func (s *Server) SetBalance(v float64) {
	s.mu.Lock()
	s.balance = v
	s.mu.Unlock()
}

// Balance returns the account's balance.
func (s *Server) Balance() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.balance
}

// SetAPIKeys sets the accepted clientKeys; none means any non-empty key.
func (s *Server) SetAPIKeys(keys ...string) {
	set := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		set[k] = struct{}{}
	}
	s.mu.Lock()
	s.keys = set
	s.mu.Unlock()
}

func (s *Server) keyOK(key string) bool {
	if key == "" {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.keys) == 0 {
		return true
	}
	_, ok := s.keys[key]
	return ok
}

// SetOutage makes every call on every method answer fault f until the fake's clock reaches
// until (e.g. 30 s of FaultHTTP503 or FaultReset). FaultNone ends an outage. Calls answered
// by an outage count in Calls but not in Creates or Polls.
func (s *Server) SetOutage(f Fault, until time.Time) {
	s.mu.Lock()
	s.outage, s.outageUntil = f, until
	s.mu.Unlock()
}

// SetScript replaces the Script deciding later createTask calls; nil means DefaultBehavior.
func (s *Server) SetScript(fn func(Task) Behavior) {
	if fn == nil {
		fn = DefaultBehavior
	}
	s.mu.Lock()
	s.script = fn
	s.mu.Unlock()
}

// Calls returns how many calls method ("createTask", "getTaskResult", "getBalance") got,
// whatever they were answered.
func (s *Server) Calls(method string) int {
	m, ok := methodIndex(method)
	if !ok {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[m]
}

// Creates returns how many createTask calls named a task with this Task.Key, failed ones
// included. Counts of a key unused for an hour (or 2×ResultTTL if longer) are forgotten.
func (s *Server) Creates(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks := s.perKey[key]; ks != nil {
		return ks.creates
	}
	return 0
}

// Polls returns how many getTaskResult calls reached tasks with this Task.Key.
func (s *Server) Polls(key string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ks := s.perKey[key]; ks != nil {
		return ks.polls
	}
	return 0
}

// Stats are a Server's totals.
type Stats struct {
	CreateTask, GetTaskResult, GetBalance int // calls per method, whatever they were answered
	Creates                               int // createTask calls that named a task (the sum of Creates)
	Created                               int // remote tasks created, each charged Cost
	Solved                                int // tasks whose ready answer was given at least once
	Failed                                int // tasks whose "failed" answer was given at least once
	InFlight                              int // tasks created, not yet answered ready or failed, not forgotten
	Tasks                                 int // tasks held in memory
	Charged                               float64
}

// Stats returns the Server's totals.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.counts
	st.CreateTask, st.GetTaskResult, st.GetBalance = s.calls[0], s.calls[1], s.calls[2]
	st.Tasks = len(s.tasks)
	st.Charged = s.charged
	return st
}

// ReadyAt returns when the task with this id (its text, digits for numeric ids) was or will be
// ready, for latency measurements; false if the fake does not hold it.
func (s *Server) ReadyAt(taskID string) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tasks[taskID]
	if t == nil {
		return time.Time{}, false
	}
	return t.ready, true
}

// roundMoney keeps repeated charges from drifting (100 - 0.001×n stays exact to 1e-9).
func roundMoney(v float64) float64 { return math.Round(v*1e9) / 1e9 }
