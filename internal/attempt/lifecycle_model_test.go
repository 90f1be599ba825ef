package attempt

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/fairshare"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/poll"
	"github.com/solvequeue/solvequeue/internal/spend"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// TestLifecycleModel drives the real worker code (one attempt at a time, through handler.process)
// and a small reference model of a job's life side by side, with random sequences of events
// drawn by rapid: AnySolver answers from all 36 seed codes and the transport faults, slow and lost
// tasks, worker processes dying before or after any Redis command of an attempt or around the
// createTask answer, Redis trouble, asynq's timeout, lost completions and redeliveries, redrives
// of dead and of failed jobs, callbacks refused for a while, a queue budget filling and rolling,
// provider failover, deadlines and a virtual clock moving. The model plays asynq's server for the
// jobs (asynq v0.26's reading of the handler's error: completed, archived, dropped, or retried
// with IsFailure and RetryDelayFunc; a dead process's job comes back through lease expiry) and
// checks after every step: one final state per ended job, consistent with AnySolver's answers; a
// dead-letter entry exactly when dead; no createTask while a paid task the worker knew of is
// alive (the README's crash window, and an answer cut short, allow one more); the budget never
// passed; retries within the budget, throttles within the deadline; every job ended or with its
// next attempt scheduled; every outcome called back, or queued, or given up after the window.
// A job held for its key's fair share of a worker short of slots is never paid, never spends a retry and
// never ends unless its deadline passed. A failure is shrunk to the shortest sequence that shows it.
//
// Unless -rapid.checks says otherwise, it draws lifecycleChecks sequences of about 30 steps (a
// thousand: about 3 minutes with -race on 2 cores, 1 without). A longer run:
//
//	go test -race ./internal/attempt/ -run TestLifecycleModel -rapid.checks=20000 -rapid.steps=80
//
// -lifecycle.strict=NAME[,NAME] (or =all) reports those known defects (knownDefects) as failures
// too, to see their minimal sequences; -lifecycle.slow also draws a Redis outage through a paid
// task's first save, which costs record.SaveTimeout (10 s) of real time each.
func TestLifecycleModel(t *testing.T) {
	t.Parallel()
	checksGiven := false
	flag.Visit(func(f *flag.Flag) { checksGiven = checksGiven || f.Name == "rapid.checks" })
	if !checksGiven {
		require.NoError(t, flag.Set("rapid.checks", strconv.Itoa(lifecycleChecks)))
	}
	rapid.Check(t, func(rt *rapid.T) {
		m := newLifecycle(rt)
		defer m.close()
		// rapid draws an action by its key's place in sorted order, favouring the first ones, and
		// gives up after 100 skipped draws in a row: the clock, which never skips, sorts first so
		// that a state where every job has ended (most actions skip) still moves on.
		rt.Repeat(map[string]func(*rapid.T){
			"advanceClock":    m.tick,
			"submit":          m.submit,
			"attempt":         m.attempt,
			"retryStorm":      m.retryStorm,
			"redriveDead":     m.redriveDead,
			"redriveFailed":   m.redriveFailed,
			"callbacks":       m.deliverCallbacks,
			"refuseCallbacks": m.refuseCallbacks,
			"timeout":         m.timeout,
			"saveOutage":      m.saveOutage,
			"budgetWatch":     m.budgetWatch,
			"rivalBurst":      m.rivalBurst,
			"breakerProbe":    m.breakerProbe,
			"fairShareHold":   m.fairShareHold,
			"":                m.check,
		})
	})
}

var slowModel = flag.Bool("lifecycle.slow", false, "TestLifecycleModel: also draw a Redis outage through a paid task's first save (10 s of real time each)")

var strictModel = flag.String("lifecycle.strict", "", "TestLifecycleModel: fail on these known defects too (comma-separated names, or all)")

// strict says whether -lifecycle.strict names defect.
func strict(defect string) bool {
	return *strictModel == "all" || slices.Contains(strings.Split(*strictModel, ","), defect)
}

// lifecycleChecks is how many sequences TestLifecycleModel draws when -rapid.checks is not given.
const lifecycleChecks = 1000

// knownDefects are the defects the model finds in the current code, by name, each with the
// invariant that catches it. A job that shows one is left out of the checks from then on (its
// state is past what the model can judge), unless -lifecycle.strict. Delete a name when its fix
// lands: the invariant behind it stands as it is.
var knownDefects = map[string]string{}

// The model's constants.
const (
	modelQueue    = "default"
	modelLifetime = 30 * time.Minute
	modelPollStep = time.Second // the poll interval being modelled (Fixed): virtual time per getTaskResult
	modelMaxJobs  = 3
	budgetWindow  = time.Hour
	// leaseRecovery is when asynq's recoverer gives a dead process's job back: its lease (30 s)
	// expired and the recoverer's minute came round.
	leaseRecovery = 90 * time.Second
	// scheduleBound is the longest a job not ended may wait for its next attempt: the backoff's
	// cap (2 min) or the throttle's (1 min) or a budget hold (1 min), plus notEarly's 2 s and a
	// lease's recovery.
	scheduleBound = 2*time.Minute + 2*time.Second + leaseRecovery
)

// aState is a task's state as asynq keeps it.
type aState string

const (
	aPending   aState = "pending" // pending or scheduled: nextAt says when it runs
	aActive    aState = "active"
	aCompleted aState = "completed"
	aArchived  aState = "archived"
	aGone      aState = "gone" // dropped (RevokeTask) or deleted
)

// mjob is one job as the model knows it.
type mjob struct {
	id        string
	callback  bool
	providers []string
	budget    int // its retry budget: its own or the policy's
	// asynqMax is the MaxRetry asynq holds for its task: what enqueue tells asynq, or, drawn now
	// and then, a smaller one (a task another producer enqueued with asynq's own default).
	asynqMax int
	lifetime time.Duration // its deadline's distance from submission (0: none)
	deadline time.Time     // as the contract says it stands: fresh after a redrive

	state   aState
	retried int
	nextAt  time.Time
	// replay says the job's record may be terminal while asynq still holds it: its last attempt
	// was cut short after the outcome was saved (a dead process, a lost completion).
	replay bool

	final      enqueue.State // the outcome the record holds once the job ended, "" before
	finalCode  string
	redrivenAt time.Time // the last redrive, zero without one
	sinceStart int       // attempts since submission or the last redrive
	tainted    string    // a known defect it showed: left out of the checks
	saveOutage bool      // an attempt's save of its paid task's id failed, then asynq took it back
	lifeStart  time.Time // submission, or the last redrive: where its lifetime starts
	throttled  bool      // its last attempt was throttled (or held): its next is due within its lifetime

	// outcomes counts the outcomes the job reached (a redrive's is another); endedAt is when
	// the last one was reached.
	outcomes int
	endedAt  time.Time
	// cbs are the callback deliveries the worker queued, by outcome (1 for the first, 2 for
	// the first redrive's, ...), as asynq keeps them.
	cbs map[int]*mcallback
}

// mcallback is one outcome's callback delivery: pending in asynq until delivered or given up.
type mcallback struct {
	state     aState // aPending while asynq holds it, "" once it is done
	next      time.Time
	tries     int
	delivered bool
	abandoned bool
}

// process is one worker process: a worker's handler, budget watcher and breaker (wired as
// worker.New wires them) with its own Redis client on the shared miniredis and its own path on
// the fake AnySolver.
type process struct {
	n    int
	w    *modelWorker
	rc   *redis.Client
	hook *procHook
}

// modelWorker is what the model drives of a worker process.
type modelWorker struct {
	handler *Handler
	budgets *spend.Watcher
	breaker *breaker.Breaker // nil when the breaker is off
}

// modelRemoteTTL is how long the fake AnySolver keeps a task's result: the worker's default.
const modelRemoteTTL = 5 * time.Minute

type lifecycle struct {
	t       *rapid.T
	ctx     context.Context
	mr      *miniredis.Miniredis
	rc      *redis.Client // the model's own view of Redis
	clock   *vclock
	file    *policyfile.Policy // the policy file the worker reads
	policy  *classify.Policy   // its classification
	fake    *fakeAnySolver
	srv     *httptest.Server
	recv    *callbackReceiver
	recvSrv *httptest.Server
	client  *enqueue.Client
	admin   *admin.Client // the operator's actions: redrive
	proc    *process
	procs   []*process
	jobs    []*mjob
	steps   []string
	// budgetCap is the queue's budget: at most this many createTask calls per budgetWindow (0: none).
	budgetCap int
	// rivals are when other worker processes paid createTasks on the queue's budget (rivalBurst).
	rivals []time.Time
	// breakerOn says the account breaker is on: an account code pauses the queue until a probe
	// of getBalance resumes it.
	breakerOn bool
	// tripCut says a process died between opening the breaker and pausing the queue: the next
	// probe (or the next job to meet the breaker) pauses it.
	tripCut bool
}

func newLifecycle(t *rapid.T) *lifecycle {
	maxRetries := rapid.SampledFrom([]int{1, 3, classify.MaxRetriesLimit}).Draw(t, "policy.maxRetries")
	budgetCap := rapid.SampledFrom([]int{0, 0, 2, 4}).Draw(t, "policy.budget")
	yaml := fmt.Sprintf("retry:\n  maxRetries: %d\n", maxRetries)
	if budgetCap > 0 {
		yaml += fmt.Sprintf("queues:\n  %s:\n    budget: {window: %s, maxCreateTasks: %d}\n", modelQueue, budgetWindow, budgetCap)
	}
	file, err := policyfile.Parse("model.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	policy := file.Classification()
	mr := miniredis.NewMiniRedis()
	if err := mr.Start(); err != nil {
		t.Fatalf("miniredis: %v", err)
	}
	clock := &vclock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}
	m := &lifecycle{t: t, ctx: context.Background(), mr: mr, clock: clock, file: file, policy: policy, budgetCap: budgetCap,
		breakerOn: rapid.Bool().Draw(t, "breaker"),
		rc:        redis.NewClient(&redis.Options{Addr: mr.Addr()})}
	m.fake = newFakeAnySolver(clock, policy, modelPollStep, modelRemoteTTL)
	m.srv = httptest.NewServer(m.fake)
	m.recv = &callbackReceiver{delivered: map[string]map[int][]callbackSeen{}}
	m.recvSrv = httptest.NewServer(m.recv)
	m.client, err = enqueue.NewClient(enqueue.Config{Redis: m.rc, Now: clock.Now})
	if err != nil {
		t.Fatalf("enqueue client: %v", err)
	}
	m.admin, err = admin.NewClient(admin.Config{Redis: m.rc, Now: clock.Now})
	if err != nil {
		t.Fatalf("admin client: %v", err)
	}
	m.startProcess()
	return m
}

func (m *lifecycle) close() {
	for _, p := range m.procs {
		m.fake.mu.Lock()
		m.fake.die(p.n)
		m.fake.mu.Unlock()
	}
	m.srv.CloseClientConnections()
	m.srv.Close()
	m.recvSrv.CloseClientConnections()
	m.recvSrv.Close()
	for _, p := range m.procs {
		_ = p.rc.Close()
	}
	_ = m.rc.Close()
	m.mr.Close()
}

// startProcess starts a new worker process: the one the next attempts run in.
func (m *lifecycle) startProcess() {
	p, err := newProcess(len(m.procs)+1, m.mr, m.fake, m.srv.URL, m.file, m.breakerOn, m.clock)
	if err != nil {
		m.t.Fatalf("%v", err)
	}
	m.procs = append(m.procs, p)
	m.proc = p
}

// newProcess starts worker process n: its own Redis client on mr, hooked to die at the fake's
// crash point, and its own path on the fake AnySolver at srvURL.
func newProcess(n int, mr *miniredis.Miniredis, fake *fakeAnySolver, srvURL string, file *policyfile.Policy, breakerOn bool, clock *vclock) (*process, error) {
	hook := &procHook{fake: fake, proc: n}
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	rc.AddHook(hook)
	as, err := anysolver.New(anysolver.Config{BaseURL: fmt.Sprintf("%s/p%d", srvURL, n), APIKey: "model-key",
		Timeout: 5 * time.Second})
	if err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("anysolver client: %w", err)
	}
	w := newModelWorker(modelRedis{rc}, as, file, breakerOn, clock.Now)
	w.handler.jitter = func() float64 { return 0.5 }
	// The clock is virtual (each poll moves it a second, see the fake): a wait for the next poll,
	// however long on that clock (a sixteenth of the task's age, a provider's 10 s rate limit),
	// takes a millisecond of real time.
	w.handler.waits.realTime = func(time.Duration) time.Duration { return time.Millisecond }
	fake.mu.Lock()
	fake.crashed[n] = make(chan struct{})
	fake.mu.Unlock()
	return &process{n: n, w: w, rc: rc, hook: hook}, nil
}

// newModelWorker wires a worker's handler, budget watcher and breaker as worker.New does with
// the model's settings: one queue, fixed 1 ms polls, no observer but the defaults of the rest.
func newModelWorker(rc redis.UniversalClient, as *anysolver.Client, policy *policyfile.Policy, breakerOn bool, now func() time.Time) *modelWorker {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	queues := []string{modelQueue}
	breakerCfg := breaker.Config{Disabled: !breakerOn}.WithDefaults()
	w := &modelWorker{}
	if breakerOn {
		w.breaker = breaker.New(breaker.Params{Config: breakerCfg, Redis: rc, AnySolver: as, Queues: queues, Log: log,
			Observer: metrics.NopObserver{}, Now: now})
	}
	lg := ledger.New(rc)
	w.budgets = spend.New(spend.Params{Ledger: lg, Policy: policy, Queues: queues, Interval: spend.CheckIntervalDefault,
		Observer: metrics.NopObserver{}, Log: log})
	w.handler = New(Params{Redis: rc, AnySolver: as, Policy: policy, Lifetime: modelLifetime, HoldWait: breakerCfg.ProbeMin,
		Poll: poll.Config{Fixed: true, Interval: time.Millisecond}, RemoteTTL: modelRemoteTTL,
		DeadLetterLimit: deadletter.LimitDefault, Budgets: lg,
		Providers: &breaker.Providers{Redis: rc, Failures: breaker.ProviderFailuresDefault, Cooldown: breaker.ProviderCooldownDefault, Log: log},
		Breaker:   w.breaker,
		Callbacks: callback.New(callback.Params{Redis: rc, Window: callback.WindowDefault, Backoff: callback.BackoffDefault,
			Observer: metrics.NopObserver{}, Log: log, Now: now, AllowPrivate: true}),
		Observer: metrics.NopObserver{}, Log: log, Now: now})
	return w
}

func (m *lifecycle) logf(format string, args ...any) {
	s := fmt.Sprintf("[%s] ", m.clock.Now().Format("15:04:05")) + fmt.Sprintf(format, args...)
	m.steps = append(m.steps, s)
	m.t.Log(s)
}

// violation reports a broken invariant of job j. A known defect taints the job instead (unless
// -lifecycle.strict): it is left out of the checks from then on.
func (m *lifecycle) violation(j *mjob, defect, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if j != nil {
		msg = "job " + j.id + ": " + msg
	}
	if _, known := knownDefects[defect]; known && !strict(defect) {
		m.logf("known defect %q: %s", defect, msg)
		if j != nil {
			j.tainted = defect
		}
		return
	}
	if defect != "" {
		msg = fmt.Sprintf("%s [%s]", msg, defect)
	}
	m.t.Fatalf("invariant broken: %s", msg)
}

// ---- actions ----

func (m *lifecycle) submit(t *rapid.T) {
	if len(m.jobs) >= modelMaxJobs {
		t.Skip("enough jobs")
	}
	j := &mjob{id: fmt.Sprintf("j%d", len(m.jobs)+1), state: aPending, nextAt: m.clock.Now(), budget: m.policy.MaxRetries(),
		lifeStart: m.clock.Now()}
	job := enqueue.Job{ID: j.id, Queue: modelQueue, Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
		"websiteURL": "https://shop.example/login", "websiteKey": j.id}}
	if rapid.Bool().Draw(t, "deadline") {
		j.lifetime = rapid.SampledFrom([]time.Duration{2 * time.Minute, 20 * time.Minute}).Draw(t, "lifetime")
		job.Deadline = j.lifetime.String()
		j.deadline = m.clock.Now().Add(j.lifetime)
	}
	if rapid.Bool().Draw(t, "callback") {
		j.callback = true
		job.CallbackURL = m.recvSrv.URL + "/cb/" + j.id
	}
	if rapid.Bool().Draw(t, "providers") {
		j.providers = []string{"CapSolver", "CapMonster"}
		job.Providers = j.providers
	}
	if rapid.Bool().Draw(t, "ownBudget") {
		n := rapid.IntRange(0, 3).Draw(t, "maxRetries")
		job.MaxRetries, j.budget = &n, n
	}
	j.asynqMax = rapid.SampledFrom([]int{jobwire.AsynqMaxRetryDefault, jobwire.AsynqMaxRetryDefault, 3}).Draw(t, "asynq.maxRetry")
	if _, err := m.client.Submit(m.ctx, job); err != nil {
		t.Fatalf("submit %s: %v", j.id, err)
	}
	m.jobs = append(m.jobs, j)
	m.logf("submit %s (deadline %s, callback %v, providers %v, budget %d)", j.id, j.lifetime, j.callback, j.providers, j.budget)
}

// runnable picks a job asynq would run: pending, not tainted.
func (m *lifecycle) runnable(t *rapid.T) *mjob {
	if m.rc.Exists(m.ctx, "asynq:{"+modelQueue+"}:paused").Val() == 1 {
		t.Skip("the queue is paused")
	}
	var js []*mjob
	for _, j := range m.jobs {
		if j.state == aPending && j.tainted == "" {
			js = append(js, j)
		}
	}
	if len(js) == 0 {
		t.Skip("no job to run")
	}
	return pick(t, js)
}

// pick draws one of js by its id.
func pick(t *rapid.T, js []*mjob) *mjob {
	ids := make([]string, len(js))
	for i, j := range js {
		ids[i] = j.id
	}
	return js[slices.Index(ids, rapid.SampledFrom(ids).Draw(t, "job"))]
}

var (
	seedCodes      = classify.SeedCodes()
	transportFault = []answerKind{ansHTTP502, ansReset, ansTruncated}
)

// drawAnswer draws an AnySolver answer: success, one of the 36 seed codes, or a transport fault.
func drawAnswer(t *rapid.T, label string, poll bool) answer {
	switch rapid.IntRange(0, 9).Draw(t, label+".kind") {
	case 0, 1, 2, 3:
		if poll {
			return answer{kind: ansReady}
		}
		return answer{kind: rapid.SampledFrom([]answerKind{ansTaskID, ansTaskID, ansReady}).Draw(t, label+".ok")}
	case 4, 5, 6:
		c := rapid.SampledFrom(seedCodes).Draw(t, label+".code")
		if poll && rapid.IntRange(0, 3).Draw(t, label+".failedStatus") == 0 {
			return answer{kind: ansFailed, code: c.ErrorCode, errorID: c.ErrorID}
		}
		return answer{kind: ansCode, code: c.ErrorCode, errorID: c.ErrorID}
	case 7:
		return answer{kind: rapid.SampledFrom(transportFault).Draw(t, label+".fault")}
	default:
		if poll {
			return answer{kind: ansProcessing, n: rapid.SampledFrom([]int{1, 3, 130}).Draw(t, label+".n")}
		}
		return answer{kind: ansTaskID}
	}
}

// attempt runs the next attempt of a job, with AnySolver's answers drawn, maybe a process death
// at some step, maybe Redis trouble at its start, maybe asynq's completion write lost.
func (m *lifecycle) attempt(t *rapid.T) {
	j := m.runnable(t)
	create := []answer{drawAnswer(t, "create", false)}
	var polls []answer
	for i := range rapid.IntRange(0, 3).Draw(t, "polls") {
		polls = append(polls, drawAnswer(t, fmt.Sprintf("poll%d", i), true))
	}
	var crash *crashPoint
	switch rapid.IntRange(0, 7).Draw(t, "crash") {
	case 1:
		crash = &crashPoint{where: rapid.SampledFrom([]string{"create-before", "create-after"}).Draw(t, "crash.http")}
	case 2:
		crash = &crashPoint{where: rapid.SampledFrom([]string{"redis-before", "redis-after"}).Draw(t, "crash.redis"),
			k: rapid.IntRange(1, 8).Draw(t, "crash.k")}
	}
	trouble := rapid.IntRange(0, 9).Draw(t, "redisTrouble") == 0
	lostCompletion := rapid.IntRange(0, 9).Draw(t, "lostCompletion") == 0
	m.run(j, create, polls, crash, trouble, lostCompletion, cut{})
}

// cut is how asynq cuts an attempt short: its timeout at the job's first poll, maybe with the
// record's saves failing meanwhile.
type cut struct {
	timeout    bool
	saveOutage bool
}

// timeout runs an attempt that asynq's timeout cuts short while it polls its paid task: asynq
// hands context.DeadlineExceeded to its retry path, whatever the handler then says.
func (m *lifecycle) timeout(t *rapid.T) {
	j := m.runnable(t)
	m.run(j, []answer{{kind: ansTaskID}}, []answer{{kind: ansProcessing, n: 3}}, nil, false, false, cut{timeout: true})
}

// saveOutage runs an attempt whose paid task's id cannot be saved (Redis fails every save for
// longer than record.SaveTimeout, real time) and that asynq's timeout then cuts short: the next attempt
// must resume that task, not pay again.
func (m *lifecycle) saveOutage(t *rapid.T) {
	if !*slowModel {
		t.Skip("-lifecycle.slow")
	}
	j := m.runnable(t)
	m.run(j, []answer{{kind: ansTaskID}}, []answer{{kind: ansProcessing, n: 3}}, nil, false, false, cut{timeout: true, saveOutage: true})
}

// retryStorm runs attempts of one job in a row, each met by a retryable code, until the job
// ends or n attempts ran: past asynq's own retry count when the policy allows more.
func (m *lifecycle) retryStorm(t *rapid.T) {
	j := m.runnable(t)
	n := rapid.IntRange(5, 110).Draw(t, "storm")
	code := rapid.SampledFrom([]string{"SERVICE_UNAVAILABLE", "INTERNAL_ERROR", "CAPTCHA_UNSOLVABLE"}).Draw(t, "storm.code")
	errID := 1
	if code == "INTERNAL_ERROR" {
		errID = 2
	}
	m.logf("retry storm of %s: up to %d attempts met by %s", j.id, n, code)
	for range n {
		if j.state != aPending || j.tainted != "" {
			return
		}
		m.run(j, []answer{{kind: ansCode, code: code, errorID: errID}}, nil, nil, false, false, cut{})
		m.check(t)
	}
}

// fairShareHold runs the next attempt of a job while its key (the model's jobs have none: the
// empty key) holds its fair share of a worker whose slots run short: two slots, one reserved, the
// other held by a job of the same key, with a second tenant known. The attempt is handed back (decide's endedFairShare)
// unless it resumes a paid task, which is never held, or finds the job expired or ended. A hold
// never pays (no createTask reaches AnySolver), never spends a retry (asynq's or the record's),
// and never ends the job unless its deadline passed.
func (m *lifecycle) fairShareHold(t *rapid.T) {
	j := m.runnable(t)
	h := m.proc.w.handler
	h.share = fairshare.New(2, 1)
	h.share.SetGatewayKeys(2) // another tenant: the reserve is kept
	release := h.share.Take("")
	defer func() { release(); h.share = nil }()
	before := m.record(j)
	m.fake.mu.Lock()
	creates := m.fake.creates[j.id]
	m.fake.mu.Unlock()
	retried := j.retried
	m.logf("fair share: %s's key holds its share of a worker short of slots", j.id)
	m.run(j, []answer{drawAnswer(t, "create", false)}, []answer{drawAnswer(t, "poll", true)}, nil, false, false, cut{})
	rec := m.record(j)
	m.fake.mu.Lock()
	created := m.fake.creates[j.id] - creates
	m.fake.mu.Unlock()
	if before.Remote != nil || before.State.Terminal() {
		return // a paid task resumed, or an outcome replayed: not the hold's to judge
	}
	if created > 0 {
		m.violation(j, "", "a job held for its key's fair share reached createTask %d times", created)
	}
	if j.retried != retried || rec.Retries != before.Retries {
		m.violation(j, "", "a job held for its key's fair share spent a retry (asynq %d -> %d, record %d -> %d)",
			retried, j.retried, before.Retries, rec.Retries)
	}
	dl := m.payloadDeadline(j)
	expired := !dl.IsZero() && !m.clock.Now().Before(dl)
	if rec.State.Terminal() && !expired {
		m.violation(j, "", "a job held for its key's fair share ended %s %s before its deadline", rec.State, codeOf(rec))
	}
	if !expired && rec.Attempts != before.Attempts {
		m.violation(j, "", "a job whose key holds its fair share was not held: %d attempts recorded, %d before", rec.Attempts, before.Attempts)
	}
}

// budgetWatch runs the worker's budget watcher once: it resumes the queue its budget paused once
// the window has room.
func (m *lifecycle) budgetWatch(t *rapid.T) {
	if m.budgetCap == 0 {
		t.Skip("no budget")
	}
	m.mr.SetTime(m.clock.Now())
	m.proc.w.budgets.Check(m.ctx, modelQueue)
	m.logf("budget watcher: queue paused %v", m.rc.Exists(m.ctx, "asynq:{"+modelQueue+"}:paused").Val() == 1)
}

// breakerProbe runs one probe of an open account breaker, the account topped up or not: a
// positive balance (or, for the key and ban codes, any answer) resumes the queue it paused.
func (m *lifecycle) breakerProbe(t *rapid.T) {
	state, err := breaker.Read(m.ctx, m.rc)
	if err != nil || state.ID == "" || m.proc.w.breaker == nil {
		t.Skip("the breaker is closed")
	}
	balance := rapid.SampledFrom([]float64{0, 5}).Draw(t, "balance")
	m.fake.mu.Lock()
	m.fake.balance = balance
	m.fake.mu.Unlock()
	resumed := m.proc.w.breaker.Probe(m.ctx, state)
	m.tripCut = false // a probe finishes a trip cut short: the check below holds from now on
	paused := m.rc.Exists(m.ctx, "asynq:{"+modelQueue+"}:paused").Val() == 1
	m.logf("breaker probe (%s, balance %v): resumed %v, queue paused %v", state.Code, balance, resumed, paused)
	if want := state.Code != classify.CodeZeroBalance || balance > 0; resumed != want {
		m.violation(nil, "", "a probe of the breaker opened by %s with balance %v resumed %v", state.Code, balance, resumed)
	}
}

func (m *lifecycle) tick(t *rapid.T) {
	d := rapid.SampledFrom([]time.Duration{time.Second, 30 * time.Second, 3 * time.Minute, 6 * time.Minute, 61 * time.Minute}).Draw(t, "tick")
	m.clock.Advance(d)
	m.logf("tick %s", d)
}

// run runs one attempt of j as asynq's server would, and reads its end as asynq v0.26 does.
func (m *lifecycle) run(j *mjob, create, polls []answer, crash *crashPoint, trouble, lostCompletion bool, c cut) {
	m.clock.advanceTo(j.nextAt)
	m.mr.SetTime(m.clock.Now()) // the budget's ledger reads Redis's clock
	j.throttled = false
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	before := m.record(j)
	m.fake.script(j.id, create, polls)
	p := m.proc
	p.hook.arm(trouble, c.saveOutage, crash)
	m.fake.mu.Lock()
	crashed := m.fake.crashed[p.n]
	delete(m.fake.onPoll, j.id)
	if c.timeout {
		m.fake.onPoll[j.id] = cancel
	}
	m.fake.mu.Unlock()
	m.logf("attempt %s (retried %d) in process %d: createTask %v, polls %v, crash %v, redis trouble %v, lost completion %v, cut %+v",
		j.id, j.retried, p.n, create, polls, crash, trouble, lostCompletion, c)

	j.state, j.sinceStart = aActive, j.sinceStart+1
	meta := taskMeta{id: j.id, queue: modelQueue, retried: j.retried, maxRetry: j.asynqMax}
	task := asynq.NewTask(jobwire.TaskType, m.payload(j))
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("panic: %v", r)
			}
		}()
		done <- p.w.handler.process(ctx, meta, task)
	}()
	var err error
	dead := false
	select {
	case err = <-done:
		select {
		case <-crashed:
			dead = true
		default:
		}
	case <-crashed:
		dead = true
	}
	p.hook.disarm()
	if dead {
		m.died(j)
		return
	}
	rec := m.record(j)
	m.fake.mu.Lock()
	last, answered := m.fake.last[j.id]
	m.fake.mu.Unlock()
	m.logf("  -> %s: record %s %s (retries %d, throttles %d, creates %d), last answer %v",
		asynqText(err), rec.State, codeOf(rec), rec.Retries, rec.Throttles, rec.CreateTasks, lastText(last, answered))
	m.fake.mu.Lock()
	_, armed := m.fake.onPoll[j.id]
	timedOut := c.timeout && !armed // the timeout fired at the job's first poll
	delete(m.fake.onPoll, j.id)
	m.fake.mu.Unlock()
	if timedOut {
		// asynq's timeout: the handler's answer is not asynq's to read.
		if rec.State.Terminal() {
			m.violation(j, "", "an attempt cut short by asynq's timeout ended the job %s", rec.State)
		}
		if c.saveOutage {
			j.saveOutage = true
		}
		m.retryPath(j, context.DeadlineExceeded, 0)
		return
	}
	m.judge(j, before, rec, err, last, answered, trouble)
	switch {
	case err == nil && lostCompletion:
		// asynq's write marking the task done failed: it stays active, and the recoverer gives
		// it back after the lease expired.
		m.logf("  completion lost: %s runs again after its lease", j.id)
		j.replay = true
		m.retryPath(j, asynq.ErrLeaseExpired, leaseRecovery)
	case err == nil:
		j.state, j.replay = aCompleted, false
		m.asynqMove(j.id, "completed")
	case errors.Is(err, asynq.SkipRetry):
		j.state, j.replay = aArchived, false
		m.asynqMove(j.id, "archived")
	case errors.Is(err, asynq.RevokeTask):
		j.state = aGone
		m.violation(j, "", "a solve job was revoked (dropped) by the handler: %v", err)
	default:
		var ae *attemptError
		j.throttled = errors.As(err, &ae) && ae.t.State == enqueue.StateRetrying && !ae.t.SpendsRetry && ae.t.Cause != nil &&
			ae.t.Cause.Decision == string(classify.Throttle)
		m.retryPath(j, err, 0)
	}
	m.noteCallback(j)
}

// died handles a process that died in an attempt of j: asynq's recoverer gives the job back once
// its lease expired, and a new process takes over.
func (m *lifecycle) died(j *mjob) {
	if state, err := breaker.Read(m.ctx, m.rc); err == nil && state.ID != "" &&
		m.rc.Exists(m.ctx, "asynq:{"+modelQueue+"}:paused").Val() == 0 {
		m.tripCut = true
	}
	rec := m.record(j)
	saved := 0
	if rec.Remote != nil {
		if id, err := anysolver.ParseTaskID(rec.Remote.TaskID); err == nil {
			fmt.Sscan(id.String(), &saved)
		}
	}
	m.fake.loseUnsaved(j.id, saved)
	m.logf("  process %d died; record %s %s", m.proc.n, rec.State, codeOf(rec))
	m.noteOutcome(j, rec)
	j.replay = true
	m.startProcess()
	m.retryPath(j, asynq.ErrLeaseExpired, leaseRecovery)
	m.noteCallback(j)
}

// retryPath is asynq's handling of a failed attempt: archived at its retry limit, else retried
// (counted when IsFailure says so) after RetryDelayFunc's delay, plus extra (a lease's recovery).
func (m *lifecycle) retryPath(j *mjob, err error, extra time.Duration) {
	if j.retried >= j.asynqMax {
		j.state = aArchived
		m.asynqMove(j.id, "archived")
		rec := m.record(j)
		m.violation(j, "asynq-retry-limit", "asynq archived the task at its own retry limit (%d retries) behind decide's back; record %s %s, budget %d",
			j.retried, rec.State, codeOf(rec), j.budget)
		return
	}
	delay := m.retryDelay(j.retried, err)
	if isFailure(err) {
		j.retried++
	}
	j.state, j.nextAt = aPending, m.clock.Now().Add(delay+extra)
}

// retryDelay is RetryDelayFunc's delay, on a virtual clock: the delay the worker asks for, stretched
// by a second (notEarly stretches it by under two, up to a whole second of the real clock, which
// would make the model's runs differ). RetryDelayFunc itself must stay within notEarly's stretch.
func (m *lifecycle) retryDelay(n int, err error) time.Duration {
	var d time.Duration
	var e *attemptError
	switch {
	case errors.As(err, &e):
		d = e.t.Delay
	case errors.Is(err, asynq.ErrLeaseExpired):
		d = time.Second
	default:
		d = m.policy.RetryDelay(n, 0.5)
	}
	got := retryDelayFunc(rules{policy: m.policy}, func() float64 { return 0.5 })(n, err, nil)
	if got < d || got > d+2*time.Second {
		m.violation(nil, "", "RetryDelayFunc gave %s for a delay of %s (%v)", got, d, err)
	}
	return d + time.Second
}
