package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/record"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

// This file SIGKILLs a Sentinel group's primary in the middle of what the issue names beyond a
// batch: a redrive, the account breaker's pause, a spend cap, and a scraper through the gateway.
// Each test logs what the failover cost (the README's figures come from these lines).

// failover kills the group's primary and waits until the Sentinel has promoted its replica; it
// returns when the SIGKILL was sent and the seconds from it to the promotion.
func failover(t *testing.T, g *redisserver.Sentinel) (killed time.Time, promotedS float64) {
	t.Helper()
	old := g.Primary.Addr
	killed = time.Now()
	require.NoError(t, g.Primary.Kill())
	_, err := g.WaitFailover(t.Context(), old)
	require.NoError(t, err)
	return killed, time.Since(killed).Seconds()
}

// writeJobs writes a batch file of n jobs named prefix-i in queue with the fake's directive.
func writeJobs(t *testing.T, prefix, queue, directive string, n int) string {
	t.Helper()
	var lines strings.Builder
	for i := range n {
		fmt.Fprintln(&lines, jobLine(fmt.Sprintf("%s-%d", prefix, i), queue, directive))
	}
	path := filepath.Join(t.TempDir(), prefix+".jsonl")
	require.NoError(t, os.WriteFile(path, []byte(lines.String()), 0o644))
	return path
}

// TestSentinelFailoverMidRedrive: `dlq redrive --all` is stopped (SIGSTOP) once it has redriven
// a tenth of the dead jobs, the primary is SIGKILLed and the Sentinel promotes the replica, then
// the redrive goes on (SIGCONT) into the outage and the failover. It finishes by itself; no dead job is lost
// (each ends solved, or dead again and found by a second redrive when the failover lost its
// redrive), and none is paid more than once per redrive it got.
func TestSentinelFailoverMidRedrive(t *testing.T) {
	t.Parallel()
	const jobs = 1500
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{DownAfter: time.Second})
	s := newDistStack(t, g.URL())
	w := s.startWorker(t, "--queues", "default=1", "--concurrency", "100", "--poll-interval", "200ms")
	in := writeJobs(t, "rd", "", "create=UNKNOWN_PROVIDER_ERROR*1;solve=100ms", jobs)
	_, stderr, code := runCLI(t, s.env(), nil, "batch", in, "--out", filepath.Join(t.TempDir(), "dead.jsonl"))
	require.Equal(t, 0, code, stderr)
	ctx := t.Context()
	dlq := keys.DeadLetters(enqueue.DefaultQueue)
	require.True(t, waitFor(hangGuard, func() bool { return s.rc.HLen(ctx, dlq).Val() == jobs }),
		"every job is in the dead-letter queue: %d", s.rc.HLen(ctx, dlq).Val())
	require.Equal(t, jobs, s.fake.Stats().CreateTask)
	// Nothing between the dead letters and the kill: the replica holds them all.
	require.Equal(t, int64(1), s.rc.Do(ctx, "WAIT", 1, 10_000).Val())

	redrive := startProc(t, s.env(), "dlq", "redrive", "--all")
	require.True(t, waitFor(hangGuard, func() bool { return s.rc.HLen(ctx, dlq).Val() <= jobs-jobs/10 }), "the redrive started")
	require.NoError(t, redrive.cmd.Process.Signal(syscall.SIGSTOP))
	select {
	case <-redrive.done:
		t.Fatalf("the redrive ended before the primary was killed: %s", redrive.logs.String())
	default:
	}
	// The redrive goes on the moment the primary is dead, before the Sentinel notices.
	old, killed := g.Primary.Addr, time.Now()
	require.NoError(t, g.Primary.Kill())
	require.NoError(t, redrive.cmd.Process.Signal(syscall.SIGCONT))
	_, err := g.WaitFailover(ctx, old)
	require.NoError(t, err)
	promoted := time.Since(killed).Seconds()
	select {
	case <-redrive.done:
	case <-time.After(hangGuard):
		t.Fatalf("the redrive did not end:\n%s", redrive.logs.String())
	}
	require.NoError(t, redrive.err, "the redrive rides out the failover:\n%s", redrive.logs.String())
	finished := time.Since(killed).Seconds()
	require.Contains(t, redrive.logs.String(), fmt.Sprintf("%d jobs redriven", jobs))

	// What the failover lost is dead again; a second redrive sends it.
	var again int
	for range 3 {
		n, err := asynq.NewInspectorFromRedisClient(s.rc).GetQueueInfo(enqueue.DefaultQueue)
		require.NoError(t, err)
		if n.Pending+n.Active+n.Retry+n.Scheduled == 0 && s.rc.HLen(ctx, dlq).Val() == 0 && n.Completed == jobs {
			break
		}
		require.True(t, waitFor(hangGuard, func() bool {
			info, err := asynq.NewInspectorFromRedisClient(s.rc).GetQueueInfo(enqueue.DefaultQueue)
			return err == nil && info.Pending+info.Active+info.Retry+info.Scheduled == 0
		}), "the redriven jobs run")
		left := s.rc.HLen(ctx, dlq).Val()
		if left == 0 {
			continue
		}
		again += int(left)
		res := cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "dlq", "redrive", "--all")
		require.Equal(t, 0, res.code, res.stderr)
	}
	ids := make([]enqueue.JobRef, jobs)
	for i := range ids {
		ids[i] = enqueue.JobRef{ID: fmt.Sprintf("rd-%d", i), Queue: enqueue.DefaultQueue}
	}
	solved := 0
	require.NoError(t, s.client.WaitMany(ctx, ids, 16, func(ref enqueue.JobRef, o enqueue.Outcome, err error) {
		require.NoError(t, err, ref.ID)
		require.Equal(t, enqueue.StateSolved, o.State, "%s: %+v", ref.ID, o)
		solved++
	}))
	require.Equal(t, jobs, solved)
	creates := s.fake.Stats().CreateTask
	t.Logf("redrive failover figures: %d dead jobs redriven, %d of them dead again after the failover (redriven a second time), "+
		"createTask per job %.3f (2 is the floor: the attempt that died and the redriven one), promoted %.1fs after the SIGKILL, "+
		"the redrive done %.1fs after it", jobs, again, float64(creates)/jobs, promoted, finished)
	require.LessOrEqual(t, creates, 2*jobs+again, "no job is paid twice for one redrive")
	require.True(t, w.waitForLog("redis reachable again", hangGuard))
}

// TestSentinelFailoverDuringBreakerPause: the account breaker pauses two queues over an empty
// account and the primary is SIGKILLed the moment the worker says so, nothing waited for by the
// test. On the promoted replica the breaker is still open with both queues paused (the trip
// waited for the replica), jobs submitted then wait, nothing is sent to AnySolver, the prober
// goes on probing, and after a top-up it resumes the queues once: every waiting job is solved,
// each paid once, and only the job that met the empty account failed.
func TestSentinelFailoverDuringBreakerPause(t *testing.T) {
	t.Parallel()
	const waiting = 20
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{DownAfter: time.Second})
	s := newDistStack(t, g.URL())
	s.fake.SetBalance(0)
	queues := []string{enqueue.DefaultQueue, "other"}
	w := s.startWorker(t, "--queues", "default=1,other=1", "--concurrency", "10", "--poll-interval", "200ms")
	ctx := t.Context()

	first := startProc(t, s.env(), "enqueue", "--id", "brk-first", "--type", "RecaptchaV2TaskProxyless",
		"--field", "websiteURL=https://shop.example/", "--field", "websiteKey=sq:id=brk-first;solve=100ms")
	require.True(t, w.waitForLog("breaker open", hangGuard), w.logs.String())
	killedAt, promoted := failover(t, g)
	<-first.done

	state, err := breaker.Read(ctx, s.rc)
	require.NoError(t, err)
	require.True(t, state.Open, "the promoted replica holds the open breaker")
	require.Equal(t, "ERROR_ZERO_BALANCE", state.Code)
	require.ElementsMatch(t, queues, state.PausedQueues, "and its pauses")
	for _, q := range queues {
		info, err := asynq.NewInspectorFromRedisClient(s.rc).GetQueueInfo(q)
		if err == nil { // a queue with no task yet has no info
			require.True(t, info.Paused, "queue %s is still paused", q)
		}
	}

	in := filepath.Join(t.TempDir(), "brk.jsonl")
	var lines strings.Builder
	for i := range waiting {
		fmt.Fprintln(&lines, jobLine(fmt.Sprintf("brk-%d", i), queues[i%2], "solve=100ms"))
	}
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	out := filepath.Join(t.TempDir(), "waiting-out.jsonl")
	batch := startProc(t, s.env(), "batch", in, "--out", out)
	require.True(t, batch.waitForLog(fmt.Sprintf("submitted %d of %d jobs", waiting, waiting), hangGuard), batch.logs.String())
	for _, q := range queues {
		info, err := asynq.NewInspectorFromRedisClient(s.rc).GetQueueInfo(q)
		require.NoError(t, err)
		require.True(t, info.Paused, "queue %s is paused", q)
	}
	probes := s.fake.Calls("getBalance")
	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Calls("getBalance") > probes }),
		"the breaker probes again after the failover")
	require.Equal(t, 1, s.fake.Stats().CreateTask, "nothing but the first job reached AnySolver while the account is empty")

	s.fake.SetBalance(10)
	select {
	case <-batch.done:
	case <-time.After(hangGuard):
		t.Fatalf("the waiting jobs did not end:\n%s\n%s", tail(batch.logs.String(), 20), tail(w.logs.String(), 40))
	}
	require.NoError(t, batch.err, batch.logs.String())
	recovered := time.Since(killedAt).Seconds()
	outcomes := readOutcomes(t, out)
	require.Len(t, outcomes, waiting)
	for id, o := range outcomes {
		require.Equal(t, enqueue.StateSolved, o.State, "job %s: %+v", id, o)
	}
	// brk-first's failed outcome is written to a replica (WAIT) before the breaker's opening is
	// announced, and the primary dies at that announcement: the promoted replica holds its record.
	// asynq's own move of the task to the archive comes after the announcement and may die with
	// the primary; the task is then still active on the replica, and its next run (once its lease
	// runs out) replays the recorded outcome, so Status says failed, or active with that error.
	rec, err := record.New(s.rc).Load(ctx, enqueue.DefaultQueue, "brk-first")
	require.NoError(t, err)
	require.Equal(t, enqueue.StateFailed, rec.State, "the outcome of the job that opened the breaker survives the failover")
	require.NotNil(t, rec.Error)
	require.Equal(t, "ERROR_ZERO_BALANCE", rec.Error.ErrorCode)
	o, err := s.client.Status(ctx, "brk-first")
	require.NoError(t, err)
	require.Contains(t, []enqueue.State{enqueue.StateFailed, enqueue.StateActive}, o.State, "%+v", o)
	require.NotNil(t, o.Error, "%+v", o)
	require.Equal(t, "ERROR_ZERO_BALANCE", o.Error.ErrorCode)
	require.Equal(t, 1+waiting, s.fake.Stats().CreateTask, "each waiting job paid once")
	require.Len(t, scanLines(w.logs.String(), `"job ended"`, `"state":"failed"`), 1, "one job failed: the one that met the empty account")
	require.Len(t, scanLines(w.logs.String(), "breaker open"), 1, w.logs.String())
	require.Len(t, scanLines(w.logs.String(), "breaker closed"), 1, "one resume:\n%s", w.logs.String())
	state, err = breaker.Read(ctx, s.rc)
	require.NoError(t, err)
	require.False(t, state.Open)
	for _, q := range queues {
		info, err := asynq.NewInspectorFromRedisClient(s.rc).GetQueueInfo(q)
		require.NoError(t, err)
		require.False(t, info.Paused, "queue %s runs again", q)
		require.Zero(t, s.rc.Exists(ctx, keys.BreakerPaused(q)).Val())
	}
	t.Logf("breaker failover figures: the breaker and its 2 pauses kept, 1 job failed (the one that met the empty account), "+
		"%d jobs waited and were solved, createTask per waiting job %.3f, promoted %.1fs after the SIGKILL, every job solved %.1fs after it "+
		"(the top-up came after the promotion and a probe)", waiting, float64(s.fake.Stats().CreateTask-1)/waiting, promoted, recovered)
}

// gatewayClient is a scraper of the gateway's AnySolver API over loopback HTTP: it creates a
// task (with an Idempotency-Key, so that a retry after an error is safe), polls its result until
// it is ready, and counts what it took.
type gatewayClient struct {
	addr, key string
	creates   atomic.Int64 // createTask calls, retries included
	errors    atomic.Int64 // answers with an error (or no answer) it retried after
	lost      atomic.Int64 // tasks created whose taskId the gateway no longer knew
}

// solve creates the task named id and waits for its solution, retrying errors every 100 ms.
func (c *gatewayClient) solve(ctx context.Context, id string) error {
	task := map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/",
		"websiteKey": "sq:id=" + id + ";solve=300ms"}
	var taskID any
	for taskID == nil {
		c.creates.Add(1)
		got, err := postGateway(ctx, c.addr, "createTask", id, map[string]any{"clientKey": c.key, "task": task})
		if err == nil && got["errorId"] == float64(0) {
			taskID = got["taskId"]
			break
		}
		if err == nil && got["errorCode"] != "INTERNAL_ERROR" {
			return fmt.Errorf("createTask %s: %v", id, got)
		}
		c.errors.Add(1)
		select {
		case <-ctx.Done():
			return fmt.Errorf("createTask %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	for {
		got, err := postGateway(ctx, c.addr, "getTaskResult", "", map[string]any{"clientKey": c.key, "taskId": taskID})
		switch {
		case err == nil && got["status"] == "ready":
			return nil
		case err == nil && got["errorCode"] == "TASK_NOT_FOUND":
			c.lost.Add(1)
			return fmt.Errorf("task %s (taskId %v) is lost: %v", id, taskID, got)
		case err == nil && got["errorId"] != float64(0) && got["errorCode"] != "INTERNAL_ERROR":
			return fmt.Errorf("getTaskResult %s: %v", id, got)
		case err != nil || got["errorId"] != float64(0):
			c.errors.Add(1)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("getTaskResult %s: %w", id, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestSentinelFailoverUnderTheGateway: scrapers keep creating tasks and reading their results
// through `worker --gateway` on redis-sentinel:// while the primary is SIGKILLed. The gateway
// answers INTERNAL_ERROR ("try again") while Redis is away and carries on by itself after the
// promotion: every task is solved, none lost, each paid once.
func TestSentinelFailoverUnderTheGateway(t *testing.T) {
	t.Parallel()
	const tasks, clients = 90, 6
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{DownAfter: time.Second})
	s := newDistStack(t, g.URL())
	const gatewayKey = "gk-failover-test-5e0c1b2a3d4f6789"
	keysFile := filepath.Join(t.TempDir(), "keys.yaml")
	require.NoError(t, os.WriteFile(keysFile, []byte("keys:\n  - name: scrapers\n    key: "+gatewayKey+"\n    queue: default\n"), 0o600))
	addr := freeLoopbackAddr(t)
	w := s.startWorker(t, "--queues", "default=1", "--concurrency", "50", "--poll-interval", "200ms",
		"--gateway", addr, "--keys", keysFile)
	require.True(t, w.waitForLog("serving AnySolver's API", hangGuard), w.logs.String())

	c := &gatewayClient{addr: addr, key: gatewayKey}
	ctx, cancel := context.WithTimeout(t.Context(), hangGuard)
	defer cancel()
	var (
		solved atomic.Int64
		next   atomic.Int64
		wg     sync.WaitGroup
		mu     sync.Mutex
		errs   []error
	)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < tasks; i = next.Add(1) - 1 {
				if err := c.solve(ctx, fmt.Sprintf("gwfo-%d", i)); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				solved.Add(1)
			}
		}()
	}
	require.True(t, waitFor(hangGuard, func() bool { return solved.Load() >= tasks/3 }), "no progress before the kill")
	killedAt, promoted := failover(t, g)
	atPromotion := solved.Load()
	require.True(t, waitFor(hangGuard, func() bool { return solved.Load() > atPromotion }), "a task is solved after the failover")
	recovered := time.Since(killedAt).Seconds()
	wg.Wait()
	require.Empty(t, errs)
	require.Equal(t, int64(tasks), solved.Load())
	for i := range tasks {
		require.Equal(t, 1, s.fake.Creates(fmt.Sprintf("sq:id=gwfo-%d;solve=300ms", i)), "task gwfo-%d paid once", i)
	}
	t.Logf("gateway failover figures: %d tasks from %d clients, %d lost, %d errors retried by the clients, createTask calls per task %.3f "+
		"(AnySolver's createTask per task %.3f), promoted %.1fs after the SIGKILL, first task solved after it %.1fs after the SIGKILL",
		tasks, clients, c.lost.Load(), c.errors.Load(), float64(c.creates.Load())/tasks, float64(s.fake.Stats().CreateTask)/tasks,
		promoted, recovered)
	require.True(t, w.waitForLog("redis reachable again", hangGuard))
}

// TestSentinelFailoverWithASpendCap: a queue with a spend cap of 6 createTask calls in 30 s has
// spent it, its budget has paused it with jobs waiting, and the primary is SIGKILLed the moment
// the worker says so. On the promoted replica `solvequeue budget` still shows the cap spent and
// the queue paused, nothing more is paid, and once the window frees room the worker resumes the
// queue by itself: every job is solved, each paid once.
func TestSentinelFailoverWithASpendCap(t *testing.T) {
	t.Parallel()
	const jobs, limit = 10, 6
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{DownAfter: time.Second})
	s := newDistStack(t, g.URL())
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte(fmt.Sprintf("queues:\n  capped:\n    budget: {window: 30s, maxCreateTasks: %d}\n", limit)), 0o644))
	w := s.startWorker(t, "--queues", "capped=1", "--policy", policy, "--concurrency", "10", "--poll-interval", "200ms")
	out := filepath.Join(t.TempDir(), "out.jsonl")
	batch := startProc(t, s.env(), "batch", writeJobs(t, "cap", "capped", "solve=100ms", jobs), "--out", out)
	require.True(t, w.waitForLog("budget spent: queue paused", hangGuard), w.logs.String())
	_, promoted := failover(t, g)

	var usage struct{ Queues []ledger.Usage }
	res := cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "budget", "--json", "--policy", policy)
	require.Equal(t, 0, res.code, res.stderr)
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &usage), res.stdout)
	require.Len(t, usage.Queues, 1)
	u := usage.Queues[0]
	paid := s.fake.Stats().CreateTask
	require.Equal(t, limit, paid, "the cap held: %+v", u)
	require.EqualValues(t, limit, u.CreateTasks, "the promoted replica holds the ledger: %+v", u)
	require.True(t, u.Paused, "and the budget's pause: %+v", u)

	select {
	case <-batch.done:
	case <-time.After(hangGuard):
		t.Fatalf("the held jobs did not end:\n%s\n%s", tail(batch.logs.String(), 20), tail(w.logs.String(), 40))
	}
	require.NoError(t, batch.err, batch.logs.String())
	outcomes := readOutcomes(t, out)
	require.Len(t, outcomes, jobs)
	for id, o := range outcomes {
		require.Equal(t, enqueue.StateSolved, o.State, "job %s: %+v", id, o)
	}
	require.Equal(t, jobs, s.fake.Stats().CreateTask, "each job paid once")
	require.NotEmpty(t, scanLines(w.logs.String(), "budget has room again: queue resumed"), w.logs.String())
	t.Logf("spend cap failover figures: the ledger (%d of %d createTask spent) and the budget's pause kept, %d jobs held through the "+
		"failover, 0 lost, createTask per job %.3f, promoted %.1fs after the SIGKILL", u.CreateTasks, limit, jobs-limit,
		float64(s.fake.Stats().CreateTask)/jobs, promoted)
}

// TestSentinelWithItsOwnPassword: a Sentinel with its own requirepass is reached with
// sentinel_password in REDIS_URL, by the worker and every command, through a failover too;
// without it, or with a wrong one, a command says so at once, and the password shows nowhere.
func TestSentinelWithItsOwnPassword(t *testing.T) {
	t.Parallel()
	const password = "s3nt1nel-pw-7c1d9e"
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{DownAfter: time.Second, SentinelPassword: password})
	require.Contains(t, g.URL(), "sentinel_password=")
	s := newDistStack(t, g.URL())
	w := s.startWorker(t, "--queues", "default=1", "--poll-interval", "200ms")
	enqueueOne := func(id string) (string, string, int) {
		return runCLI(t, s.env(), nil, "enqueue", "--id", id, "--type", "RecaptchaV2TaskProxyless",
			"--field", "websiteURL=https://shop.example/", "--field", "websiteKey=sq:solve=100ms", "--wait")
	}
	stdout, stderr, code := enqueueOne("pw-1")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"solved"`)

	failover(t, g)
	stdout, stderr, code = enqueueOne("pw-2")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"solved"`, "the worker and the producer follow the failover, asking the Sentinel with its password")

	without := "redis-sentinel://" + g.Sentinel.Addr + "?master=" + g.Master
	for _, url := range []string{without, without + "&sentinel_password=wrong-" + password} {
		res := cliRun(t, map[string]string{"REDIS_URL": url}, "", "status", "pw-1")
		require.NotEqual(t, 0, res.code, "%s: %s", redact.URL(url), res.stdout)
		require.Contains(t, res.stderr, "no Sentinel knows the primary")
		require.NotContains(t, res.stderr, password)
	}
	res := cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "status", "pw-2")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "solved")
	require.NotContains(t, w.logs.String(), password, "the worker never logs the Sentinel's password")
}
