// Package chaos runs solvequeue's real binary under faults — workers SIGKILLed and restarted,
// Redis killed and restarted from its append-only file, dead letters redriven while callbacks
// are still being retried, a budget raised and lowered — and then checks the invariants of the
// contract against the fake AnySolver's own answers and Redis. It owns the plan of faults and
// the checks; the worker, the DLQ and the fake are the real ones.
package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/internal/redisserver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Defaults of Options.
const (
	JobsDefault      = 60
	WorkersDefault   = 2
	KillsDefault     = 1
	KillEveryDefault = 8 * time.Second
	SeedDefault      = 1
	// SettleDefault bounds the wait for every job, dead letter and callback to settle after the
	// last fault. asynq gives a SIGKILLed worker's jobs back 70-170 s after the kill, and a
	// callback refused meanwhile waits its backoff: five minutes holds both.
	SettleDefault = 5 * time.Minute
	// Queue holds the unbudgeted jobs; BudgetQueue the budgeted ones.
	Queue       = "chaos"
	BudgetQueue = "capped"
	// BudgetWindow is the budgeted queue's rolling window.
	BudgetWindow = time.Minute
	// CrashWindow is how long after a createTask's answer a worker's SIGKILL may still cost a
	// second createTask for the job: the time to write the remote task's id to Redis (README,
	// Reliability: "Not guaranteed").
	CrashWindow = 5 * time.Second
	apiKey      = "sk-chaos-7c1f0e2d9b"
)

// The budget's steps: a low cap at the start, raised, then lowered below what was spent.
var budgetCaps = [...]int{3, 8, 2}

// Options configure a chaos run. The zero value of each field means its default.
type Options struct {
	// Jobs is how many jobs are submitted. Defaults to JobsDefault.
	Jobs int
	// Workers is how many worker processes run. Defaults to WorkersDefault.
	Workers int
	// Kills is how many times a worker is SIGKILLed (and restarted). Defaults to KillsDefault.
	Kills int
	// KillEvery is the time between two kills, the first one KillEvery after the start.
	// Defaults to KillEveryDefault.
	KillEvery time.Duration
	// RedisRestarts is how many times Redis is killed and restarted from its AOF. Defaults to 1.
	RedisRestarts int
	// Seed draws the job mix. Defaults to SeedDefault.
	Seed uint64
	// Settle bounds the wait for everything to settle. Defaults to SettleDefault.
	Settle time.Duration
	// Binary is the solvequeue binary the workers run. Defaults to this executable.
	Binary string
	// Dir keeps the workers' logs, the policy and Redis's data. Defaults to a temporary
	// directory, removed after a run without violations.
	Dir string
	// Progress receives a line per event as the run goes. Defaults to none.
	Progress io.Writer
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Jobs <= 0 {
		o.Jobs = JobsDefault
	}
	if o.Workers <= 0 {
		o.Workers = WorkersDefault
	}
	if o.Kills <= 0 {
		o.Kills = KillsDefault
	}
	if o.KillEvery <= 0 {
		o.KillEvery = KillEveryDefault
	}
	if o.RedisRestarts <= 0 {
		o.RedisRestarts = 1
	}
	if o.Seed == 0 {
		o.Seed = SeedDefault
	}
	if o.Settle <= 0 {
		o.Settle = SettleDefault
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	return o
}

// Validate says what is wrong with o, after defaults.
func (o Options) Validate() error {
	o = o.WithDefaults()
	switch {
	case o.Jobs < 20 || o.Jobs > 5000:
		return fmt.Errorf("--jobs must be between 20 and 5000 (every kind of job needs a few), got %d", o.Jobs)
	case o.Workers < 2 || o.Workers > 8:
		return fmt.Errorf("--workers must be between 2 and 8 (one keeps working while another is killed), got %d", o.Workers)
	case o.Kills > 20 || o.RedisRestarts > 20:
		return fmt.Errorf("--kills and --redis-restarts must be at most 20, got %d and %d", o.Kills, o.RedisRestarts)
	}
	return nil
}

// Violation is one broken invariant.
type Violation struct {
	Invariant string `json:"invariant"`
	JobID     string `json:"jobId,omitempty"`
	Detail    string `json:"detail"`
}

// Totals count a run's jobs and faults.
type Totals struct {
	Jobs               int            `json:"jobs"`
	States             map[string]int `json:"states"`
	Kinds              map[string]int `json:"kinds"` // "kind state" → jobs, e.g. "deadline dead"
	Kills              int            `json:"workerKills"`
	RedisRestarts      int            `json:"redisRestarts"`
	BudgetChanges      int            `json:"budgetChanges"`
	RedriveRounds      int            `json:"redriveRounds"`
	Redrives           int            `json:"redrives"`
	CreateTaskCalls    int            `json:"createTaskCalls"`
	PaidTasks          int            `json:"paidTasks"`
	AllowedPaidTasks   int            `json:"allowedPaidTasks"`
	CrashExtraTasks    int            `json:"crashExtraTasks"`
	FakeCreates        int            `json:"fakeCreates"`
	FakeCreated        int            `json:"fakeCreated"`
	CallbackJobs       int            `json:"callbackJobs"`
	CallbackOutcomes   int            `json:"callbackOutcomes"`
	CallbacksDelivered int            `json:"callbacksDelivered"`
	CallbacksRefused   int64          `json:"callbacksRefused"`
	BudgetPeak         int            `json:"budgetPeakInWindow"`
}

// Report is a chaos run's outcome.
type Report struct {
	Seed        uint64      `json:"seed"`
	Workers     int         `json:"workers"`
	Dir         string      `json:"dir"`
	Settled     bool        `json:"settled"`
	WallSeconds float64     `json:"wallSeconds"`
	Totals      Totals      `json:"totals"`
	Violations  []Violation `json:"violations"`
	Events      []string    `json:"events"`
}

// ErrViolations is returned (wrapped) by Run when an invariant was broken.
var ErrViolations = errors.New("chaos: invariants broken")

// run is one chaos run's state.
type run struct {
	o       Options
	start   time.Time
	report  *Report
	redis   *redisserver.Server
	rc      redis.UniversalClient
	client  *enqueue.Client
	admin   *admin.Client
	rec     *recorder
	fake    *anysolvertest.Server
	recv    *receiver
	workers *workerSet
	live    []*workerProc // by slot
	jobs    []plannedJob
	policy  string

	mu       sync.Mutex
	kills    []time.Time
	redriven map[string][]time.Time
	redisOff [][2]time.Time
}

// Run runs the chaos plan and checks the invariants. The report is returned with an error
// wrapping ErrViolations when an invariant was broken.
func Run(ctx context.Context, o Options) (_ *Report, err error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if _, err := redisserver.LookPath(""); err != nil {
		return nil, fmt.Errorf("the chaos run starts its own redis-server, with an append-only file: %w", err)
	}
	if o.Binary == "" {
		if o.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find the solvequeue binary: %w", err)
		}
	}
	ownDir := o.Dir == ""
	if ownDir {
		if o.Dir, err = os.MkdirTemp("", "solvequeue-chaos-"); err != nil {
			return nil, err
		}
	}
	r := &run{o: o, start: time.Now(), redriven: map[string][]time.Time{},
		report: &Report{Seed: o.Seed, Workers: o.Workers, Dir: o.Dir, Totals: Totals{States: map[string]int{}, Kinds: map[string]int{}}}}
	defer func() {
		r.report.WallSeconds = time.Since(r.start).Round(time.Second).Seconds()
		if ownDir && err == nil {
			_ = os.RemoveAll(o.Dir)
			r.report.Dir = ""
		}
	}()
	if err := r.setUp(ctx); err != nil {
		r.tearDown()
		return nil, err
	}
	faultErr := r.faults(ctx)
	r.report.Settled = faultErr == nil && r.settle(ctx)
	r.stopWorkers()
	r.check(ctx)
	r.tearDown()
	if faultErr != nil {
		return r.report, faultErr
	}
	if len(r.report.Violations) > 0 {
		return r.report, fmt.Errorf("%w: %d violations", ErrViolations, len(r.report.Violations))
	}
	return r.report, nil
}

func (r *run) event(format string, args ...any) {
	line := fmt.Sprintf("%6.1fs  ", time.Since(r.start).Seconds()) + fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.report.Events = append(r.report.Events, line)
	r.mu.Unlock()
	fmt.Fprintln(r.o.Progress, line)
}

// setUp starts Redis with an AOF, the fake behind its recorder, the callback receiver and the
// workers, and opens the producer.
func (r *run) setUp(ctx context.Context) error {
	dataDir := filepath.Join(r.o.Dir, "redis")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	var err error
	r.redis, err = redisserver.Start(ctx, redisserver.Options{AppendOnly: true, AppendFsync: "always", Dir: dataDir})
	if err != nil {
		return err
	}
	if r.rc, err = redisconn.Open(ctx, r.redis.URL(), 0); err != nil {
		return err
	}
	if r.client, err = enqueue.NewClient(enqueue.Config{Redis: r.rc}); err != nil {
		return err
	}
	if r.admin, err = admin.NewClient(admin.Config{Redis: r.rc}); err != nil {
		return err
	}
	r.fake = anysolvertest.New(anysolvertest.Options{APIKeys: []string{apiKey}, Balance: 1e9,
		Script: anysolvertest.DirectiveScript(nil), Seed: int64(r.o.Seed)})
	r.rec = newRecorder(r.fake)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("serve the fake AnySolver: %w", err)
	}
	fakeSrv := &http.Server{Handler: r.rec, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = fakeSrv.Serve(ln) }()
	// Callbacks are refused until well after the first redrives, so that redriven jobs' new
	// outcomes are called back while their first deliveries are still being retried.
	if r.recv, err = startReceiver(r.start.Add(r.refuseFor())); err != nil {
		return err
	}
	r.policy = filepath.Join(r.o.Dir, "policy.yaml")
	if err := r.writePolicy(budgetCaps[0]); err != nil {
		return err
	}
	r.workers = &workerSet{binary: r.o.Binary, dir: r.o.Dir,
		env: []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "REDIS_URL=" + r.redis.URL(),
			"ANYSOLVER_URL=http://" + ln.Addr().String(), "ANYSOLVER_API_KEY=" + apiKey, "SOLVEQUEUE_LOG_FORMAT=json"},
		args: []string{"--queues", Queue + "=3," + BudgetQueue + "=1", "--policy", r.policy, "--callback-allow-private",
			"--shutdown-timeout", "3s", "--concurrency", "200"}}
	r.live = make([]*workerProc, r.o.Workers)
	for i := range r.live {
		if r.live[i], err = r.workers.start(ctx, i, budgetCaps[0]); err != nil {
			return err
		}
	}
	r.jobs = planJobs(r.o.Jobs, r.o.Seed, r.recv.URL)
	r.report.Totals.Jobs = len(r.jobs)
	r.event("redis-server %s (appendonly, fsync always), fake AnySolver %s, %d workers, callbacks refused for %s",
		r.redis.Addr, ln.Addr(), r.o.Workers, r.refuseFor())
	return nil
}

// refuseFor is how long the receiver refuses callbacks: past the second redrive round.
func (r *run) refuseFor() time.Duration { return r.redriveAt(1) + 10*time.Second }

func (r *run) writePolicy(cap int) error {
	text := fmt.Sprintf("queues:\n  %s:\n    budget: {window: %s, maxCreateTasks: %d}\n", BudgetQueue, BudgetWindow, cap)
	tmp := r.policy + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, r.policy)
}

func (r *run) stopWorkers() {
	for _, p := range r.live {
		if p != nil {
			p.stop(15 * time.Second)
		}
	}
}

func (r *run) tearDown() {
	r.stopWorkers()
	if r.recv != nil {
		r.recv.close()
	}
	if r.fake != nil {
		r.fake.Close()
	}
	if r.rc != nil {
		_ = r.rc.Close()
	}
	if r.redis != nil {
		_ = r.redis.Stop()
	}
}

// plannedJob is one job of the plan and what the fake was scripted to do with it.
type plannedJob struct {
	job       enqueue.Job
	kind      string
	submitted time.Time
}

// The kinds of job, each scripted through the fake's websiteKey directives.
var kinds = []struct {
	name      string
	directive string // after "sq:id=ID;"
	deadline  string
	weight    int
}{
	{"slow", "solve=%ds", "", 4},                                  // solved after 2-8 s
	{"transient", "create=SERVICE_UNAVAILABLE*2;solve=2s", "", 2}, // retried, then solved
	{"throttled", "create=RATE_LIMITED;solve=1s", "", 1},          // throttled, then solved
	{"unsolvable", "failed=CAPTCHA_UNSOLVABLE;solve=1s", "", 1},   // paid, failed, re-created, solved
	{"permanent", "create=DOMAIN_BANNED", "", 1},                  // failed at once
	{"dead", "create=UNKNOWN_PROVIDER_ERROR", "", 1},              // dead at once; solved once redriven
	{"deadline", "failed=CAPTCHA_UNSOLVABLE;solve=10s", "6s", 2},  // paid, failed past its deadline: dead; solved once redriven
}

// planJobs draws n jobs: one in six on the budgeted queue, one in ten "tight" (no retry
// budget, submitted late), the rest by kind; one in three with a callbackUrl.
func planJobs(n int, seed uint64, callbackURL string) []plannedJob {
	rng := rand.New(rand.NewPCG(seed, 0xc4a05))
	total := 0
	for _, k := range kinds {
		total += k.weight
	}
	run := fmt.Sprintf("%x", rng.Uint32())
	jobs := make([]plannedJob, n)
	for i := range jobs {
		id := fmt.Sprintf("chaos-%s-%03d", run, i)
		j := enqueue.Job{ID: id, Queue: Queue, Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
			"websiteURL": "https://chaos.example/login"}}
		kind, directive := "budget", "solve=1s"
		switch {
		case i%6 == 5:
			j.Queue = BudgetQueue
		case i%10 == 7:
			// No retry to spend, a solve that spans the graceful restarts: a SIGTERM's hand-back
			// must not cost it one. It is submitted after the first SIGKILL, which may.
			kind, directive, j.MaxRetries = "tight", "solve=12s", new(int)
		default:
			p := rng.IntN(total)
			for _, k := range kinds {
				if p -= k.weight; p < 0 {
					kind, directive, j.Deadline = k.name, k.directive, k.deadline
					break
				}
			}
			if strings.Contains(directive, "%d") {
				directive = fmt.Sprintf(directive, 2+rng.IntN(7))
			}
		}
		j.Task["websiteKey"] = anysolvertest.DirectivePrefix + "id=" + id + ";" + directive
		if i%3 == 0 {
			j.CallbackURL = callbackURL
		}
		jobs[i] = plannedJob{job: j, kind: kind}
	}
	return jobs
}
