package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// These process-level tests prove issue 4, money safety, with the built binary: a crash or a
// restart never pays for a captcha twice, the account breaker keeps jobs instead of burning
// them, deadlines stop spending, and a duplicate submit is one job. Each asserts the outcomes
// and the createTask calls the fake AnySolver saw.
//
// The SIGKILL test waits for asynq's lease recovery (70–170 s, fixed in asynq) and dominates
// the file's wall time; every test runs in parallel with its own redis-server, fake and worker.

// moneyCreatesPerJobMax is the most createTask calls per job a crash or restart may cost.
const moneyCreatesPerJobMax = 1.02

// moneyJob is a reCAPTCHA job whose websiteKey scripts the fake (see anysolvertest.DirectiveScript)
// and names the job, so the fake counts its createTask calls per job.
func moneyJob(id, directive string) enqueue.Job {
	key := "sq:id=" + id
	if directive != "" {
		key += ";" + directive
	}
	return enqueue.Job{ID: id, Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
		"websiteURL": "https://shop.example/checkout", "websiteKey": key}}
}

func moneyKey(j enqueue.Job) string { return j.Task["websiteKey"].(string) }

// moneyJobs is n jobs prefix-0 ... prefix-(n-1) with the same directive.
func moneyJobs(prefix string, n int, directive string) []enqueue.Job {
	jobs := make([]enqueue.Job, n)
	for i := range jobs {
		jobs[i] = moneyJob(fmt.Sprintf("%s-%02d", prefix, i), directive)
	}
	return jobs
}

func moneyIDs(jobs []enqueue.Job) []string {
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	return ids
}

// moneySubmit submits every job and requires each to be new.
func moneySubmit(t *testing.T, s *stack, jobs ...enqueue.Job) {
	t.Helper()
	for _, j := range jobs {
		sub, err := s.client.SubmitJob(context.Background(), j)
		require.NoError(t, err)
		require.False(t, sub.Existing, "job %s was already queued", j.ID)
	}
}

// moneyEventually polls cond until it holds, failing after within.
func moneyEventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// moneyRecord reads the worker's record of a job in the default queue, as asynq stores it.
func moneyRecord(t *testing.T, s *stack, id string) jobwire.Record {
	t.Helper()
	info, err := s.inspector.GetTaskInfo(enqueue.DefaultQueue, id)
	require.NoError(t, err, "job %s", id)
	rec, err := jobwire.DecodeRecord(info.Result)
	require.NoError(t, err, "record of job %s", id)
	return rec
}

// moneyWaitRemotes waits until every job's record holds its paid remote task id.
func moneyWaitRemotes(t *testing.T, s *stack, ids []string, within time.Duration) {
	t.Helper()
	moneyEventually(t, within, "every job records its remote task", func() bool {
		for _, id := range ids {
			if moneyRecord(t, s, id).Remote == nil {
				return false
			}
		}
		return true
	})
}

// moneyInFlight counts the jobs whose record is not terminal.
func moneyInFlight(t *testing.T, s *stack, ids []string) int {
	t.Helper()
	n := 0
	for _, id := range ids {
		if !moneyRecord(t, s, id).State.Terminal() {
			n++
		}
	}
	return n
}

// moneyRequireSolved requires every outcome solved with one createTask in its record and at the fake.
func moneyRequireSolved(t *testing.T, s *stack, jobs []enqueue.Job, out map[string]enqueue.Outcome) {
	t.Helper()
	for _, j := range jobs {
		o := out[j.ID]
		require.Equal(t, enqueue.StateSolved, o.State, "job %s: %+v", j.ID, o.Error)
		require.NotEmpty(t, o.Solution, "job %s", j.ID)
		require.Equal(t, 1, o.CreateTasks, "job %s: createTask calls in its record", j.ID)
		require.Equal(t, 1, s.fake.Creates(moneyKey(j)), "job %s: createTask calls the fake saw", j.ID)
	}
}

func moneyRedis(t *testing.T, s *stack) redis.UniversalClient {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), s.redis.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	return rc
}

func moneyPaused(t *testing.T, s *stack, queue string) bool {
	t.Helper()
	info, err := s.inspector.GetQueueInfo(queue)
	require.NoError(t, err, "queue %s", queue)
	return info.Paused
}

func moneyBreaker(t *testing.T, rc redis.UniversalClient) worker.BreakerState {
	t.Helper()
	b, err := breaker.Read(context.Background(), rc)
	require.NoError(t, err)
	return b
}

// moneyStatus runs `solvequeue status ID --json`.
func moneyStatus(t *testing.T, s *stack, id string) (enqueue.Outcome, *worker.BreakerState) {
	t.Helper()
	stdout, stderr, code := runCLI(t, s.env(), nil, "status", id, "--json")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var got struct {
		enqueue.Outcome
		Breaker *worker.BreakerState `json:"breaker"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &got), "status output: %s", stdout)
	return got.Outcome, got.Breaker
}

// moneyWaitProbe waits until the breaker has probed getBalance again after now, so a check
// that follows sees what a running prober left.
func moneyWaitProbe(t *testing.T, s *stack) {
	t.Helper()
	before := s.fake.Calls("getBalance")
	moneyEventually(t, hangGuard, "the breaker probes getBalance", func() bool {
		return s.fake.Calls("getBalance") > before
	})
}

func moneyExited(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func moneyResumes(p *proc) int {
	return len(scanLines(p.logs.String(), "resuming a paid AnySolver task"))
}

// TestMoneySafetySIGKILLResumesPaidTasks kills the worker while 60 paid remote tasks are being
// solved; the next worker gets them back by asynq's lease recovery and resumes polling them.
func TestMoneySafetySIGKILLResumesPaidTasks(t *testing.T) {
	t.Parallel()
	hold := &pollGate{}
	s := newWrappedStack(t, hold.wrap)
	first := s.startWorker(t, nil)
	jobs := moneyJobs("kill", 60, "solve=6s")
	ids := moneyIDs(jobs)
	moneySubmit(t, s, jobs...)
	moneyWaitRemotes(t, s, ids, hangGuard)

	require.Error(t, first.signal(syscall.SIGKILL, hangGuard))
	require.True(t, moneyExited(first), "SIGKILL ends the worker")
	killed := time.Now()
	inFlight := moneyInFlight(t, s, ids)
	require.GreaterOrEqual(t, inFlight, 50, "most jobs must still be polling their remote task when the worker dies")
	require.Equal(t, 60, s.fake.Stats().Creates)
	hold.release()

	second := s.startWorker(t, nil)
	out := s.waitAll(t, ids, hangGuard+3*time.Minute) // lease recovery (70-170 s) included
	recovery := time.Since(killed)

	moneyRequireSolved(t, s, jobs, out)
	perJob := float64(s.fake.Stats().Creates) / float64(len(jobs))
	t.Logf("SIGKILL: %d jobs solved, %.3f createTask calls per job, %d resumed by the new worker, all solved %s after the kill",
		len(jobs), perJob, moneyResumes(second), recovery.Round(time.Second))
	require.LessOrEqual(t, perJob, moneyCreatesPerJobMax)
	require.Equal(t, inFlight, moneyResumes(second), "every job in flight at the kill is resumed, not re-created")
}

// TestMoneySafetySIGTERMHandsBackPaidTasks stops the worker gracefully while 60 paid remote
// tasks are being solved: they are handed back at once with their remote ids kept, and the
// next worker resumes them.
func TestMoneySafetySIGTERMHandsBackPaidTasks(t *testing.T) {
	t.Parallel()
	hold := &pollGate{}
	s := newWrappedStack(t, hold.wrap)
	first := s.startWorker(t, nil, "--shutdown-timeout", "1s")
	jobs := moneyJobs("term", 60, "solve=6s")
	ids := moneyIDs(jobs)
	moneySubmit(t, s, jobs...)
	moneyWaitRemotes(t, s, ids, hangGuard)

	stopped := time.Now()
	require.NoError(t, first.signal(syscall.SIGTERM, hangGuard), "a SIGTERMed worker exits cleanly")
	inFlight := moneyInFlight(t, s, ids)
	require.GreaterOrEqual(t, inFlight, 50, "most jobs must still be polling their remote task when the worker stops")
	info, err := s.inspector.GetQueueInfo(enqueue.DefaultQueue)
	require.NoError(t, err)
	require.Zero(t, info.Active, "no job may stay active after a graceful stop")
	require.Equal(t, len(ids), info.Pending+info.Completed, "every unfinished job is handed back to its queue")
	for _, id := range ids {
		if rec := moneyRecord(t, s, id); !rec.State.Terminal() {
			require.NotNil(t, rec.Remote, "job %s was handed back without its paid remote task", id)
		}
	}
	hold.release()

	second := s.startWorker(t, nil)
	out := s.waitAll(t, ids, hangGuard)
	moneyRequireSolved(t, s, jobs, out)
	perJob := float64(s.fake.Stats().Creates) / float64(len(jobs))
	t.Logf("SIGTERM: %d jobs solved, %.3f createTask calls per job, %d resumed by the new worker, all solved %s after the signal",
		len(jobs), perJob, moneyResumes(second), time.Since(stopped).Round(time.Second))
	require.LessOrEqual(t, perJob, moneyCreatesPerJobMax)
	require.Equal(t, inFlight, moneyResumes(second))
}

// createGate holds the fake's createTask answers: the task is created (and paid) at once,
// the answer waits until the gate opens.
type createGate struct {
	open chan struct{}
	once sync.Once
	held atomic.Int64
}

func newCreateGate() *createGate { return &createGate{open: make(chan struct{})} }

func (g *createGate) release() { g.once.Do(func() { close(g.open) }) }

func (g *createGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Base(r.URL.Path) != "createTask" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		g.held.Add(1)
		select {
		case <-g.open:
		case <-r.Context().Done():
			return
		}
		maps.Copy(w.Header(), rec.Header())
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes())
	})
}

// pollGate keeps every remote task unsolved while it is closed: getTaskResult answers
// "processing" without asking the fake, so that a test acts while every job is paid and still
// polling, however slowly a busy machine runs it. Once released, polls reach the fake.
type pollGate struct{ open atomic.Bool }

func (g *pollGate) release() { g.open.Store(true) }

func (g *pollGate) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if path.Base(r.URL.Path) != "getTaskResult" || g.open.Load() {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"errorId":0,"status":"processing"}`))
	})
}

// newGatedStack is newStack with the fake's createTask answers held by a gate.
func newGatedStack(t *testing.T, gate *createGate) *stack {
	t.Helper()
	s := newWrappedStack(t, gate.wrap)
	t.Cleanup(gate.release) // before the server closes: no handler stays held
	return s
}

// newWrappedStack is newStack with the fake served through wrap.
func newWrappedStack(t *testing.T, wrap func(http.Handler) http.Handler) *stack {
	t.Helper()
	s := &stack{apiKey: stackAPIKey, redis: enqueuetest.Redis(t, enqueuetest.RedisOptions{})}
	s.fake = anysolvertest.New(anysolvertest.Options{APIKeys: []string{stackAPIKey}, Script: anysolvertest.DirectiveScript(nil)})
	srv := httptest.NewServer(wrap(s.fake))
	t.Cleanup(srv.Close)
	t.Cleanup(s.fake.Close)
	s.fakeURL = srv.URL
	rc := moneyRedis(t, s)
	var err error
	s.client, err = enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	s.admin, err = admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	s.inspector = asynq.NewInspectorFromRedisClient(rc)
	return s
}

// TestMoneySafetySIGTERMDuringCreateTask stops the worker while its createTask calls are paid
// but not yet answered: the stopping worker still records the remote ids, so the next worker
// resumes those tasks instead of paying for them again.
func TestMoneySafetySIGTERMDuringCreateTask(t *testing.T) {
	t.Parallel()
	gate := newCreateGate()
	s := newGatedStack(t, gate)
	first := s.startWorker(t, nil, "--shutdown-timeout", "1s")
	jobs := moneyJobs("midcreate", 5, "solve=2s")
	moneySubmit(t, s, jobs...)
	moneyEventually(t, hangGuard, "every createTask is paid and waiting for its answer", func() bool {
		return gate.held.Load() == int64(len(jobs))
	})

	require.NoError(t, first.cmd.Process.Signal(syscall.SIGTERM))
	require.True(t, first.waitForLog("Quitting worker", hangGuard), "asynq hands the jobs back after the shutdown timeout")
	gate.release()
	select {
	case <-first.done:
		require.NoError(t, first.err)
	case <-time.After(hangGuard):
		t.Fatal("the worker did not exit after SIGTERM")
	}
	for _, j := range jobs {
		require.NotNil(t, moneyRecord(t, s, j.ID).Remote, "job %s: the paid remote task was not recorded on shutdown", j.ID)
	}

	second := s.startWorker(t, nil)
	out := s.waitAll(t, moneyIDs(jobs), hangGuard)
	moneyRequireSolved(t, s, jobs, out)
	require.Equal(t, len(jobs), moneyResumes(second))
	require.Equal(t, len(jobs), s.fake.Calls("createTask"))
}

// TestMoneySafetyZeroBalanceKeepsJobs: the job that meets ERROR_ZERO_BALANCE fails, the
// breaker pauses the queues, jobs submitted meanwhile wait, and a top-up lets them all through.
func TestMoneySafetyZeroBalanceKeepsJobs(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{ZeroBalance: true})
	rc := moneyRedis(t, s)
	w := s.startWorker(t, nil)
	firstJob := moneyJob("zb-first", "solve=500ms")
	moneySubmit(t, s, firstJob)
	out := s.waitAll(t, []string{firstJob.ID}, hangGuard)
	require.Equal(t, enqueue.StateFailed, out[firstJob.ID].State)
	require.Equal(t, "ERROR_ZERO_BALANCE", out[firstJob.ID].Error.ErrorCode)
	require.True(t, moneyPaused(t, s, enqueue.DefaultQueue), "the breaker pauses the queue")

	got, breaker := moneyStatus(t, s, firstJob.ID)
	require.Equal(t, enqueue.StateFailed, got.State)
	require.True(t, got.QueuePaused)
	require.NotNil(t, breaker, "solvequeue status shows the open breaker")
	require.True(t, breaker.Open)
	require.Equal(t, "ERROR_ZERO_BALANCE", breaker.Code)
	require.Contains(t, breaker.PausedQueues, enqueue.DefaultQueue)

	waiting := moneyJobs("zb-wait", 8, "solve=500ms")
	moneySubmit(t, s, waiting...)
	moneyWaitProbe(t, s)
	for _, j := range waiting {
		o, err := s.client.StatusIn(context.Background(), enqueue.DefaultQueue, j.ID)
		require.NoError(t, err)
		require.Equal(t, enqueue.StatePending, o.State, "job %s is kept while the balance is zero", j.ID)
	}
	require.Equal(t, 1, s.fake.Calls("createTask"), "nothing is sent to AnySolver while the breaker is open")

	s.fake.SetBalance(10)
	out = s.waitAll(t, moneyIDs(waiting), hangGuard)
	moneyRequireSolved(t, s, waiting, out)
	require.Equal(t, 1+len(waiting), s.fake.Calls("createTask"))
	again, err := s.client.StatusIn(context.Background(), enqueue.DefaultQueue, firstJob.ID)
	require.NoError(t, err)
	require.Equal(t, enqueue.StateFailed, again.State)
	require.Equal(t, 1, again.CreateTasks, "the failed job is not tried again")
	require.Equal(t, 1, s.fake.Creates(moneyKey(firstJob)))
	require.False(t, moneyPaused(t, s, enqueue.DefaultQueue))
	require.False(t, moneyBreaker(t, rc).Open)
	require.NotEmpty(t, scanLines(w.logs.String(), "breaker closed"))
	require.Len(t, scanLines(w.logs.String(), `"job ended"`, `"state":"failed"`), 1, "exactly one job failed")
}

// TestMoneySafetyWrongKeyPausesUntilRestart: with a wrong key the first job goes to the
// dead-letter queue and the queue is paused; a worker restarted with the right key resumes
// it, solves the rest, and the dead job solves once redriven.
func TestMoneySafetyWrongKeyPausesUntilRestart(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	rc := moneyRedis(t, s)
	const wrongKey = "sk-wrong-0f3e2d1c0b9a8877"
	first := s.startWorker(t, []string{"ANYSOLVER_API_KEY=" + wrongKey})
	deadJob := moneyJob("wk-first", "solve=500ms")
	moneySubmit(t, s, deadJob)
	out := s.waitAll(t, []string{deadJob.ID}, hangGuard)
	require.Equal(t, enqueue.StateDead, out[deadJob.ID].State)
	require.Equal(t, "ERROR_KEY_DOES_NOT_EXIST", out[deadJob.ID].Error.ErrorCode)
	require.True(t, moneyPaused(t, s, enqueue.DefaultQueue))
	require.Equal(t, "ERROR_KEY_DOES_NOT_EXIST", moneyBreaker(t, rc).Code)
	stale, err := s.admin.DeadLetter(context.Background(), enqueue.DefaultQueue, deadJob.ID)
	require.NoError(t, err, "the dead job is in the dead-letter queue")

	rest := moneyJobs("wk-rest", 5, "solve=500ms")
	moneySubmit(t, s, rest...)
	moneyWaitProbe(t, s)
	for _, j := range rest {
		o, err := s.client.StatusIn(context.Background(), enqueue.DefaultQueue, j.ID)
		require.NoError(t, err)
		require.Equal(t, enqueue.StatePending, o.State, "job %s is kept while the key is wrong", j.ID)
	}
	require.Equal(t, 1, s.fake.Calls("createTask"))
	require.NoError(t, first.signal(syscall.SIGTERM, hangGuard))
	require.NotContains(t, first.logs.String(), wrongKey, "the key never reaches a log line")

	second := s.startWorker(t, nil)
	out = s.waitAll(t, moneyIDs(rest), hangGuard)
	moneyRequireSolved(t, s, rest, out)
	require.False(t, moneyPaused(t, s, enqueue.DefaultQueue), "the probe with the right key resumes the queue")
	require.False(t, moneyBreaker(t, rc).Open)

	stdout, stderr, code := runCLI(t, s.env(), nil, "dlq", "redrive", deadJob.ID)
	require.Equal(t, 0, code, "stdout: %s\nstderr: %s", stdout, stderr)
	out = s.waitAll(t, []string{deadJob.ID}, hangGuard)
	moneyRequireSolved(t, s, []enqueue.Job{deadJob}, out)

	// A second operator acting on the dead letter read before the redrive must neither run
	// the solved job again (paying twice) nor purge it.
	require.ErrorIs(t, s.admin.Redrive(context.Background(), stale), enqueue.ErrJobNotFound)
	purged, err := s.admin.Purge(context.Background(), []admin.DeadLetter{stale})
	require.NoError(t, err)
	require.Zero(t, purged)
	info, err := s.inspector.GetTaskInfo(enqueue.DefaultQueue, deadJob.ID)
	require.NoError(t, err)
	require.Equal(t, asynq.TaskStateCompleted, info.State, "the redriven job stays solved")
	require.Equal(t, 2+len(rest), s.fake.Calls("createTask"), "one refused call with the wrong key, then one per job")
	require.NotContains(t, second.logs.String(), stackAPIKey)
}

// TestMoneySafetyDeadlines: a job whose deadline passed before any attempt fails as
// JOB_EXPIRED without a createTask; one whose deadline passes during retries dies with its
// last error.
func TestMoneySafetyDeadlines(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	s.startWorker(t, nil)

	expired := moneyJob("dl-past", "solve=500ms")
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	stdout, stderr, code := runCLI(t, s.env(), nil, "enqueue", "--id", expired.ID, "--type", "RecaptchaV2TaskProxyless",
		"--website-url", "https://shop.example/checkout", "--website-key", moneyKey(expired),
		"--deadline", past, "--wait", "--timeout", "3m")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	var o enqueue.Outcome
	require.NoError(t, json.Unmarshal([]byte(stdout), &o), "enqueue --wait output: %s", stdout)
	require.Equal(t, enqueue.StateFailed, o.State)
	require.Equal(t, "JOB_EXPIRED", o.Error.ErrorCode)
	require.Zero(t, o.CreateTasks)
	require.Zero(t, s.fake.Calls("createTask"), "an expired job costs nothing")

	// The deadline leaves room for the first attempt however busy the machine is: the job must
	// be tried, and retried, before it passes.
	retried := moneyJob("dl-retries", "create=SERVICE_UNAVAILABLE*1000")
	retried.Deadline = "20s"
	moneySubmit(t, s, retried)
	out := s.waitAll(t, []string{retried.ID}, hangGuard)[retried.ID]
	require.Equal(t, enqueue.StateDead, out.State)
	require.Equal(t, "SERVICE_UNAVAILABLE", out.Error.ErrorCode, "the dead job keeps its last error")
	require.Equal(t, "dead", out.Error.Decision)
	require.GreaterOrEqual(t, s.fake.Creates(moneyKey(retried)), 1)
	require.Equal(t, s.fake.Creates(moneyKey(retried)), out.CreateTasks)
	d, err := s.admin.DeadLetter(context.Background(), enqueue.DefaultQueue, retried.ID)
	require.NoError(t, err)
	require.Equal(t, "SERVICE_UNAVAILABLE", d.Record.Error.ErrorCode)
}

// TestMoneySafetyConcurrentSubmitsOneJob submits one id from 20 goroutines and 4 CLI processes
// at once: one job, one createTask.
func TestMoneySafetyConcurrentSubmitsOneJob(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	s.startWorker(t, nil)
	job := moneyJob("same-order-42", "solve=1s")

	bin, env := solvequeueBinary(t), append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, s.env()...)
	var (
		wg      sync.WaitGroup
		created atomic.Int64
		errs    = make(chan error, 24)
		start   = make(chan struct{})
	)
	for range 4 {
		wg.Go(func() {
			<-start
			cmd := exec.Command(bin, "enqueue", "--id", job.ID, "--type", "RecaptchaV2TaskProxyless",
				"--website-url", "https://shop.example/checkout", "--website-key", moneyKey(job))
			var stdout, stderr strings.Builder
			cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
			if err := cmd.Run(); err != nil || strings.TrimSpace(stdout.String()) != job.ID {
				errs <- fmt.Errorf("enqueue: %v: %s %s", err, stdout.String(), stderr.String())
				return
			}
			if !strings.Contains(stderr.String(), "already queued") {
				created.Add(1)
			}
		})
	}
	for range 20 {
		wg.Go(func() {
			<-start
			sub, err := s.client.SubmitJob(context.Background(), job)
			if err != nil || sub.ID != job.ID {
				errs <- fmt.Errorf("submit: %v (id %q)", err, sub.ID)
				return
			}
			if !sub.Existing {
				created.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.EqualValues(t, 1, created.Load(), "exactly one submit creates the job")

	out := s.waitAll(t, []string{job.ID}, hangGuard)
	moneyRequireSolved(t, s, []enqueue.Job{job}, out)
	info, err := s.inspector.GetQueueInfo(enqueue.DefaultQueue)
	require.NoError(t, err)
	require.Equal(t, 1, info.Completed)
	require.Zero(t, info.Pending+info.Active+info.Scheduled+info.Retry+info.Archived)
	require.Equal(t, 1, s.fake.Calls("createTask"))
}

// TestMoneySafetyOperatorPauseLeftAlone: the breaker pauses and resumes only the queues it
// paused itself; a queue an operator paused stays paused.
func TestMoneySafetyOperatorPauseLeftAlone(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{ZeroBalance: true})
	rc := moneyRedis(t, s)
	held := moneyJob("op-low", "solve=500ms")
	held.Queue = "low"
	moneySubmit(t, s, held)
	require.NoError(t, s.inspector.PauseQueue("low"), "the operator pauses low")
	s.startWorker(t, nil)

	trip := moneyJob("op-trip", "solve=500ms")
	moneySubmit(t, s, trip)
	out := s.waitAll(t, []string{trip.ID}, hangGuard)
	require.Equal(t, enqueue.StateFailed, out[trip.ID].State)
	require.Equal(t, 1, s.fake.Creates(moneyKey(trip)))
	breaker := moneyBreaker(t, rc)
	require.True(t, breaker.Open)
	require.Equal(t, []string{"critical", "default"}, slices.Sorted(slices.Values(breaker.PausedQueues)),
		"the breaker records only the queues it paused")

	s.fake.SetBalance(10)
	// A resume closes the breaker first and lifts its pauses after, one queue at a time (they are
	// keys of different Cluster slots), so the queue's pause may outlive the closing briefly.
	moneyEventually(t, hangGuard, "the breaker closes after the top-up", func() bool { return !moneyBreaker(t, rc).Open })
	moneyEventually(t, hangGuard, "the breaker resumes its own pause", func() bool { return !moneyPaused(t, s, enqueue.DefaultQueue) })
	require.True(t, moneyPaused(t, s, "low"), "the operator's pause stays")
	after := moneyJob("op-after", "solve=500ms")
	moneySubmit(t, s, after)
	moneyRequireSolved(t, s, []enqueue.Job{after}, s.waitAll(t, []string{after.ID}, hangGuard))
	o, err := s.client.StatusIn(context.Background(), "low", held.ID)
	require.NoError(t, err)
	require.Equal(t, enqueue.StatePending, o.State)
	require.Zero(t, s.fake.Creates(moneyKey(held)))

	require.NoError(t, s.inspector.UnpauseQueue("low"), "the operator resumes low")
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	o, err = s.client.WaitIn(ctx, "low", held.ID)
	require.NoError(t, err)
	require.Equal(t, enqueue.StateSolved, o.State)
	require.Equal(t, 1, s.fake.Creates(moneyKey(held)))
}
