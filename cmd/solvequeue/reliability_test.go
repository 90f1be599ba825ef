package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// The reliability scenarios of issue 8: the built binary against a real redis-server and the
// fake AnySolver, each scenario asserting outcomes and what was paid (createTask counts).

// TestRedisRestartMidBatch kills Redis (AOF, appendfsync always) while a batch waits for its
// jobs and a worker solves them, and starts it again: both reconnect by themselves, say so
// once each way, and every job is solved with at most 1.02 createTask per job.
func TestRedisRestartMidBatch(t *testing.T) {
	t.Parallel()
	redisFaultMidBatch(t, "restart", func(s *stack, w, batch *proc) {
		require.NoError(t, s.redis.Kill())
		// Down until both noticed (a PING takes ~2 s to fail: go-redis retries the dial).
		require.True(t, w.waitForLog("redis unreachable", hangGuard), "the worker did not notice")
		require.True(t, batch.waitForLog("redis unreachable", hangGuard), "the batch did not notice")
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		require.NoError(t, s.redis.Restart(ctx))
	})
}

// TestRedisHangsMidBatch freezes Redis (SIGSTOP: connections open, no answers) for at least
// 15 s, and until both the batch waiting and the worker solving said so: the same promises as a
// restart.
func TestRedisHangsMidBatch(t *testing.T) {
	t.Parallel()
	redisFaultMidBatch(t, "hang", func(s *stack, w, batch *proc) {
		pid := redisPID(t, s.redis)
		require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
		frozen := time.Now()
		defer func() { require.NoError(t, syscall.Kill(pid, syscall.SIGCONT)) }()
		// Each notices after a PING that gets no answer within its timeout, and one more to
		// confirm: seconds, which the race detector on busy cores stretches. Wait for the lines.
		require.True(t, w.waitForLog("redis unreachable", hangGuard), "the worker did not notice")
		require.True(t, batch.waitForLog("redis unreachable", hangGuard), "the batch did not notice")
		t.Logf("both noticed the hang %s after it began", time.Since(frozen).Round(100*time.Millisecond))
		time.Sleep(time.Until(frozen.Add(15 * time.Second)))
	})
}

// redisFaultMidBatch runs a batch of 300 jobs with a worker, applies fault once a third are
// solved, and checks the promises: every job solved, at most 1.02 createTask per job, and each
// process says once that Redis went away and once that it came back, nothing more.
func redisFaultMidBatch(t *testing.T, name string, fault func(s *stack, w, batch *proc)) {
	const jobs = 300
	s := newStack(t, enqueuetest.RedisOptions{AppendOnly: true, AppendFsync: "always"}, anysolvertest.Options{})
	w := s.startWorker(t, nil, "--poll-interval", "300ms")

	dir := t.TempDir()
	keys := make([]string, jobs)
	var lines strings.Builder
	for i := range jobs {
		keys[i] = fmt.Sprintf("sq:id=%s-%d;solve=%dms", name, i, 500+i%7*300)
		fmt.Fprintf(&lines, `{"id":"%s-%d","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":%q}}`+"\n", name, i, keys[i])
	}
	in := filepath.Join(dir, "jobs.jsonl")
	out := filepath.Join(dir, "outcomes.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	batch := startProc(t, s.env(), "batch", in, "--out", out)

	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Stats().Solved >= jobs/3 }), "no progress before the fault")
	fault(s, w, batch)

	// Jobs whose end Redis missed come back by asynq's lease recovery (70-170 s).
	select {
	case <-batch.done:
	case <-time.After(hangGuard + 3*time.Minute):
		t.Fatalf("batch did not finish; its output:\n%s", tail(batch.logs.String(), 40))
	}
	require.NoError(t, batch.err, "batch output:\n%s", batch.logs.String())

	outcomes := readOutcomes(t, out)
	require.Len(t, outcomes, jobs)
	creates := 0
	for i, k := range keys {
		o := outcomes[fmt.Sprintf("%s-%d", name, i)]
		require.Equal(t, enqueue.StateSolved, o.State, "job %d: %+v", i, o)
		n := s.fake.Creates(k)
		require.GreaterOrEqual(t, n, 1)
		creates += n
	}
	t.Logf("createTask calls: %d for %d jobs (%.3f per job)", creates, jobs, float64(creates)/jobs)
	require.LessOrEqual(t, float64(creates), 1.02*jobs, "paid too often")

	// Each process says it once each way; the outage is not one line per job.
	require.True(t, w.waitForLog("redis reachable again", hangGuard))
	for name, logs := range map[string]string{"worker": w.logs.String(), "batch": batch.logs.String()} {
		down, up := len(scanLines(logs, "redis unreachable")), len(scanLines(logs, "redis reachable again"))
		if name == "worker" {
			require.Equal(t, 1, down, "%s log:\n%s", name, logs)
		}
		// A batch that did not touch Redis during the restart (it had every outcome already, or
		// was between polls) has nothing to say; one that did says it once each way.
		require.LessOrEqual(t, down, 1, "%s log:\n%s", name, logs)
		// A batch may also end (every outcome read) before its watcher sees Redis answer again.
		require.LessOrEqual(t, up, down, "%s says the outage ended no more often than it began:\n%s", name, logs)
		if name == "worker" {
			require.Equal(t, 1, up, "%s log:\n%s", name, logs)
		}
		require.Empty(t, scanLines(logs, "pool.go"), "go-redis spoke on its own in the %s log", name)
	}
	complaints := append(scanLines(w.logs.String(), `"level":"WARN"`), scanLines(w.logs.String(), `"level":"ERROR"`)...)
	require.LessOrEqual(t, len(complaints), 5, "worker warnings and errors:\n%s", strings.Join(complaints, "\n"))
	require.LessOrEqual(t, len(strings.Split(batch.logs.String(), "\n")), 10, "batch output:\n%s", batch.logs.String())
	t.Logf("worker warnings and errors:\n%s\nbatch:\n%s", strings.Join(complaints, "\n"), batch.logs.String())
}

// redisPID is the process id of a test's redis-server, from INFO.
func redisPID(t *testing.T, r *enqueuetest.RedisServer) int {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), r.URL(), 0)
	require.NoError(t, err)
	defer rc.Close()
	info, err := rc.Info(context.Background(), "server").Result()
	require.NoError(t, err)
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			var pid int
			_, err := fmt.Sscan(v, &pid)
			require.NoError(t, err)
			return pid
		}
	}
	t.Fatal("no process_id in INFO server")
	return 0
}

// waitFor polls cond every 50 ms until it holds or within passes.
func waitFor(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cond()
}

// readOutcomes reads a batch's outcome lines by job id.
func readOutcomes(t *testing.T, path string) map[string]enqueue.Outcome {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	out := map[string]enqueue.Outcome{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if line == "" {
			continue
		}
		var o enqueue.Outcome
		require.NoError(t, json.Unmarshal([]byte(line), &o), "outcome line %q", line)
		out[o.ID] = o
	}
	return out
}

// TestRedisUnreachable30s takes Redis away for 30 s while jobs are queued, polled and
// waited for: the worker stays up, /readyz answers 503 meanwhile while /healthz stays 200,
// nothing is lost and work resumes by itself, without paying twice.
func TestRedisUnreachable30s(t *testing.T) {
	t.Parallel()
	const jobs = 120
	s := newStack(t, enqueuetest.RedisOptions{AppendOnly: true, AppendFsync: "always"}, anysolvertest.Options{})
	w := s.startWorker(t, nil, "--http", "127.0.0.1:0", "--poll-interval", "500ms")
	base := httpBase(t, w)
	code, _ := httpGet(t, base+"/readyz")
	require.Equal(t, 200, code)

	// Some jobs end before the outage, some are polled through it (their paid tasks are ready
	// while Redis is away), the rest wait in Redis.
	ctx := context.Background()
	keys := map[string]string{}
	submit := func(from, to int, solve time.Duration) {
		for i := from; i < to; i++ {
			id := fmt.Sprintf("away-%d", i)
			keys[id] = fmt.Sprintf("sq:id=%s;solve=%s", id, solve)
			_, err := s.client.Submit(ctx, recaptchaJob(id, keys[id]))
			require.NoError(t, err)
		}
	}
	submit(0, jobs/2, time.Second)
	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Stats().Solved >= jobs/4 }))
	submit(jobs/2, jobs, 12*time.Second)
	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Stats().Created >= jobs*3/4 }))
	// A producer waits across the outage.
	waiter := startProc(t, s.env(), "enqueue", "--id", "away-waiter", "--type", "RecaptchaV2TaskProxyless",
		"--website-url", "https://shop.example", "--website-key", "sq:id=away-waiter;solve=8s", "--wait", "--timeout", "10m")
	keys["away-waiter"] = "sq:id=away-waiter;solve=8s"
	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Creates(keys["away-waiter"]) == 1 }))

	require.NoError(t, s.redis.Kill())
	down := time.Now()
	require.True(t, w.waitForLog("redis unreachable", hangGuard), "the worker did not notice")
	probes := 0
	for time.Since(down) < 30*time.Second {
		code, body := httpGet(t, base+"/readyz")
		probes++
		require.Equal(t, 503, code, "/readyz while Redis is away: %s", body)
		code, _ = httpGet(t, base+"/healthz")
		require.Equal(t, 200, code, "/healthz while Redis is away")
		select {
		case <-w.done:
			t.Fatalf("the worker exited while Redis was away: %v", w.err)
		default:
		}
		time.Sleep(2 * time.Second)
	}
	t.Logf("/readyz answered 503 to all %d probes while Redis was away", probes)
	rctx, cancel := context.WithTimeout(ctx, hangGuard)
	defer cancel()
	require.NoError(t, s.redis.Restart(rctx))
	back := time.Now()

	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	out := s.waitAll(t, ids, hangGuard+3*time.Minute) // lease recovery (70-170 s) included
	t.Logf("every job ended %s after Redis came back", time.Since(back).Round(time.Second))
	creates := 0
	for _, id := range ids {
		require.Equal(t, enqueue.StateSolved, out[id].State, "job %s: %+v", id, out[id])
		n := s.fake.Creates(keys[id])
		require.GreaterOrEqual(t, n, 1, id)
		creates += n
	}
	t.Logf("createTask calls: %d for %d jobs", creates, len(ids))
	require.LessOrEqual(t, float64(creates), 1.02*float64(len(ids)), "paid too often")
	require.True(t, waitFor(hangGuard, func() bool { c, _ := httpGet(t, base+"/readyz"); return c == 200 }), "/readyz did not recover")

	select {
	case <-waiter.done:
	case <-time.After(hangGuard):
		t.Fatalf("the waiting producer did not end:\n%s", waiter.logs.String())
	}
	require.NoError(t, waiter.err, waiter.logs.String())
	require.Contains(t, waiter.logs.String(), `"state":"solved"`)

	require.True(t, w.waitForLog("redis reachable again", hangGuard))
	require.Len(t, scanLines(w.logs.String(), "redis unreachable"), 1)
	require.Len(t, scanLines(w.logs.String(), "redis reachable again"), 1)
	complaints := append(scanLines(w.logs.String(), `"level":"WARN"`), scanLines(w.logs.String(), `"level":"ERROR"`)...)
	require.LessOrEqual(t, len(complaints), 5, "worker warnings and errors:\n%s", strings.Join(complaints, "\n"))
}

// TestAnySolverOutage30s gives AnySolver a 30 s outage (15 s of 503 pages, then 15 s of reset
// connections) while some jobs poll their paid tasks and others are submitted: every job is
// solved afterwards, none is dead, each is paid once, and the worker does not hammer the
// provider: a few calls per job in 30 s, spread by jitter instead of in lockstep.
func TestAnySolverOutage30s(t *testing.T) {
	t.Parallel()
	const perPhase = 30
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	f := newFront(t, s)
	s.startWorker(t, nil) // adaptive polling and the default policy, as deployed
	ctx := context.Background()
	keys := map[string]string{}
	submit := func(phase string, solve time.Duration) {
		for i := range perPhase {
			id := fmt.Sprintf("outage-%s-%d", phase, i)
			keys[id] = fmt.Sprintf("sq:id=%s;solve=%s", id, solve)
			_, err := s.client.Submit(ctx, recaptchaJob(id, keys[id]))
			require.NoError(t, err)
		}
	}
	// Phase a: paid and being polled when the outage begins (their solve time is longer than
	// creating them all can take, even on a busy machine, and shorter than the outage).
	submit("a", 20*time.Second)
	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Stats().Created == perPhase }))
	start := time.Now()
	end := start.Add(30 * time.Second)
	s.fake.SetOutage(anysolvertest.FaultHTTP503, start.Add(15*time.Second))
	// Phase b: submitted during the outage; createTask fails until it ends.
	submit("b", 2*time.Second)
	time.Sleep(time.Until(start.Add(15 * time.Second)))
	s.fake.SetOutage(anysolvertest.FaultReset, end)

	ids := make([]string, 0, len(keys))
	for id := range keys {
		ids = append(ids, id)
	}
	out := s.waitAll(t, ids, hangGuard)
	maxRetries := 0
	for _, id := range ids {
		require.Equal(t, enqueue.StateSolved, out[id].State, "job %s: %+v", id, out[id])
		require.Equal(t, 1, s.fake.Creates(keys[id]), "job %s was paid more than once", id)
		maxRetries = max(maxRetries, out[id].Retries)
	}
	t.Logf("the outage spent at most %d retries of a job's budget of %d", maxRetries, 10)

	// No hammering: count each job's calls during the outage.
	byJob := map[string][]time.Time{}
	for _, c := range f.snapshot() {
		if c.key != "" && !c.at.Before(start) && c.at.Before(end) {
			byJob[c.key] = append(byJob[c.key], c.at)
		}
	}
	require.Len(t, byJob, 2*perPhase, "every job called during the outage")
	most, closest := 0, time.Hour
	var second, third []time.Duration
	for key, at := range byJob {
		slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
		most = max(most, len(at))
		require.LessOrEqual(t, len(at), 7, "job %s called %d times in 30 s: %v", key, len(at), at)
		for i := 1; i < len(at); i++ {
			closest = min(closest, at[i].Sub(at[i-1]))
		}
		if strings.Contains(key, "outage-b-") && len(at) >= 3 {
			second = append(second, at[1].Sub(at[0]))
			third = append(third, at[2].Sub(at[0]))
		}
	}
	t.Logf("during the 30 s outage: at most %d calls per job, the closest two %s apart", most, closest.Round(time.Millisecond))
	require.Greater(t, closest, 900*time.Millisecond, "a job called again sooner than its backoff")
	// Jobs that failed together come back spread out, not in lockstep.
	require.Len(t, second, perPhase)
	spread := func(d []time.Duration) time.Duration { return slices.Max(d) - slices.Min(d) }
	t.Logf("phase b retries: the first came %s-%s after the first call, the second %s-%s",
		slices.Min(second).Round(time.Millisecond), slices.Max(second).Round(time.Millisecond),
		slices.Min(third).Round(time.Millisecond), slices.Max(third).Round(time.Millisecond))
	require.Greater(t, spread(second), 300*time.Millisecond, "retries in lockstep: %v", second)
	require.Greater(t, spread(third), 600*time.Millisecond, "retries in lockstep: %v", third)
}

// TestHostileAnswers sends a worker process the answers a broken network or provider gives,
// once on createTask and once on a poll for each: a 1 GB streamed body, a fast body that never
// ends, a body that drips forever, headers that never come, garbage bytes, valid JSON of the
// wrong shape, a truncated answer, a proxy's HTML page, a reset connection. Each is classified
// within the client's timeout and retried; every job is solved and paid once; the worker's
// memory stays bounded and no goroutine outlives its call.
func TestHostileAnswers(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	f := newFront(t, s)
	var streamed sync.Map // key → body bytes the front wrote
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, c frontCall) bool {
		fault, ok := strings.CutPrefix(c.key, "hostile-"+c.method+"-")
		if !ok || !c.first {
			return false
		}
		streamed.Store(c.key, serveHostile(w, r, fault))
		return true
	})
	w := s.startWorker(t, nil, "--http", "127.0.0.1:0", "--poll-interval", "500ms")
	base := httpBase(t, w)
	ctx := context.Background()

	// Warm up, then count the worker's goroutines with no connection to AnySolver open.
	_, err := s.client.Submit(ctx, recaptchaJob("hostile-warmup", "hostile-warmup"))
	require.NoError(t, err)
	s.waitAll(t, []string{"hostile-warmup"}, hangGuard)
	f.srv.CloseClientConnections()
	before := waitGoroutines(t, base, 0)
	rssBefore := procStatusKB(t, w.cmd.Process.Pid, "VmHWM")

	var ids []string
	for _, fault := range hostileFaults {
		for _, method := range []string{"createTask", "getTaskResult"} {
			id := "hostile-" + method + "-" + fault
			ids = append(ids, id)
			_, err := s.client.Submit(ctx, recaptchaJob(id, id))
			require.NoError(t, err)
		}
	}
	out := s.waitAll(t, ids, hangGuard)
	for _, id := range ids {
		o := out[id]
		require.Equal(t, enqueue.StateSolved, o.State, "job %s: %+v", id, o)
		require.Equal(t, 1, s.fake.Creates(id), "job %s was paid more than once", id)
		if strings.Contains(id, "createTask") {
			require.Equal(t, 1, o.Retries, "job %s: the hostile createTask answer is one retry: %+v", id, o)
		} else {
			require.Equal(t, 0, o.Retries, "job %s: a hostile poll answer does not end the attempt: %+v", id, o)
			require.GreaterOrEqual(t, o.Polls, 2, id)
		}
	}
	for _, c := range f.snapshot() {
		if strings.HasPrefix(c.key, "hostile-"+c.method+"-") && c.first {
			n, _ := streamed.Load(c.key)
			// The client's Timeout ended the call (the job was solved after one retry, or after
			// more polls): this bound only catches a worker that never hung up.
			require.Less(t, c.took, anysolver.DefaultTimeout+hangGuard, "%s took %s", c.key, c.took)
			t.Logf("%-34s the worker hung up after %8s and %9d bytes", c.key, c.took.Round(time.Millisecond), n)
		}
	}
	for _, method := range []string{"createTask", "getTaskResult"} {
		gb, ok := streamed.Load("hostile-" + method + "-gigabyte")
		require.True(t, ok)
		require.Less(t, gb.(int64), int64(256<<20), "the worker read the 1 GB body instead of dropping it")
	}

	rss := procStatusKB(t, w.cmd.Process.Pid, "VmHWM")
	t.Logf("worker peak RSS (VmHWM): %d MB before the hostile answers, %d MB after", rssBefore>>10, rss>>10)
	require.Less(t, rss, int64(256<<10), "peak RSS %d kB: memory is not bounded", rss)

	f.srv.CloseClientConnections()
	after := waitGoroutines(t, base, before)
	t.Logf("worker goroutines: %d before, %d after", before, after)
}

// hostileFaults are the answers serveHostile gives.
var hostileFaults = []string{"gigabyte", "endless", "drip", "hang", "garbage", "wrongshape", "truncated", "html502", "reset"}

// serveHostile answers with fault and returns the body bytes written. Streams and waits end
// when the client leaves.
func serveHostile(w http.ResponseWriter, r *http.Request, fault string) int64 {
	chunk := bytes.Repeat([]byte("a"), 32<<10)
	var n int64
	write := func(p []byte) bool {
		m, err := w.Write(p)
		n += int64(m)
		return err == nil && r.Context().Err() == nil
	}
	switch fault {
	case "gigabyte": // 1 GB of a valid JSON answer, streamed without a Content-Length
		w.Header().Set("Content-Type", "application/json")
		write([]byte(`{"errorId":0,"taskId":1,"pad":"`))
		for n < 1<<30 && write(chunk) {
		}
		write([]byte(`"}`))
	case "endless": // a body that never ends, as fast as the client reads
		w.Header().Set("Content-Type", "application/json")
		for write(chunk) {
		}
	case "drip": // a body that never ends, a byte a second
		w.Header().Set("Content-Type", "application/json")
		for write([]byte(" ")) {
			_ = http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
		}
	case "hang": // headers that never come
		<-r.Context().Done()
	case "garbage":
		w.Header().Set("Content-Type", "application/json")
		write([]byte("\x00\x1f\x8b\xff\xfe garbage"))
	case "wrongshape": // valid JSON, nothing where it should be
		w.Header().Set("Content-Type", "application/json")
		write([]byte(`{"errorId":0,"taskId":{"id":[1,2]},"status":42,"solution":"x"}`))
	case "truncated":
		w.Header().Set("Content-Type", "application/json")
		write([]byte(`{"errorId":0,"status":"ready","solution":{"token":"abc`))
	case "html502":
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		write([]byte("<html><body><h1>502 Bad Gateway</h1></body></html>"))
	case "reset":
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = conn.Close()
		}
	}
	return n
}

// procStatusKB reads a kB field of /proc/PID/status, such as VmHWM (peak RSS).
func procStatusKB(t *testing.T, pid int, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			require.NoError(t, err)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// metricValue reads one unlabeled metric from a worker's /metrics.
func metricValue(t *testing.T, base, name string) float64 {
	t.Helper()
	code, body := httpGet(t, base+"/metrics")
	require.Equal(t, 200, code)
	for _, line := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			_, err := fmt.Sscanf(v, "%g", &f)
			require.NoError(t, err)
			return f
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// waitGoroutines waits until the worker's goroutine count is at most limit, or with limit 0
// until it holds still for 2 s, and returns it.
func waitGoroutines(t *testing.T, base string, limit int) int {
	t.Helper()
	n, stable := int(metricValue(t, base, "go_goroutines")), 0
	for deadline := time.Now().Add(hangGuard); time.Now().Before(deadline); {
		time.Sleep(500 * time.Millisecond)
		m := int(metricValue(t, base, "go_goroutines"))
		if m == n {
			stable++
		} else {
			stable = 0
		}
		n = m
		if (limit == 0 && stable >= 4) || (limit > 0 && n <= limit) {
			return n
		}
	}
	require.LessOrEqual(t, n, limit, "goroutines did not come back down (or, with limit 0, never held still)")
	return n
}

// TestPoisonInRedis puts tasks of our type with garbage payloads into Redis by hand, between
// good jobs: each poisoned one ends failed with a reason, shown by `solvequeue status`, none
// reaches AnySolver, and the good jobs keep flowing.
func TestPoisonInRedis(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	w := s.startWorker(t, nil, "--poll-interval", "200ms")
	ctx := context.Background()
	rc, err := redisconn.Open(ctx, s.redis.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	ac := asynq.NewClientFromRedisClient(rc)

	poison := []string{`garbage{{`, "\x00\xff\xfe binary", `null`, `[]`, `{"v":1}`, `{"v":7,"task":{"type":"X"}}`,
		`{"v":1,"task":{"type":"RecaptchaV2TaskProxyless"}}`, `{"v":1,"task":{"type":"ImageToTextTask","body":"%%%"}}`,
		`{"v":1,"task":{"type":"X","proxy":42}}`, `{"v":1,"task":"RecaptchaV2TaskProxyless"}`}
	var good []string
	for i, payload := range poison {
		_, err := ac.Enqueue(asynq.NewTask(jobwire.TaskType, []byte(payload)), asynq.TaskID(fmt.Sprintf("poison-%d", i)),
			asynq.Retention(time.Hour), asynq.MaxRetry(jobwire.AsynqMaxRetryDefault))
		require.NoError(t, err)
		for j := range 4 {
			id := fmt.Sprintf("healthy-%d-%d", i, j)
			good = append(good, id)
			_, err := s.client.Submit(ctx, recaptchaJob(id, "site-key-"+id))
			require.NoError(t, err)
		}
	}
	// A task of a type that is not ours, in our queue, is archived instead of retried.
	_, err = ac.Enqueue(asynq.NewTask("someone:else", []byte("{}")), asynq.TaskID("stranger"), asynq.Retention(time.Hour))
	require.NoError(t, err)

	out := s.waitAll(t, good, hangGuard)
	for _, id := range good {
		require.Equal(t, enqueue.StateSolved, out[id].State, id)
	}
	require.Equal(t, len(good), s.fake.Calls("createTask"), "poison reached AnySolver")
	for i := range poison {
		id := fmt.Sprintf("poison-%d", i)
		o := s.waitAll(t, []string{id}, hangGuard)[id]
		require.Equal(t, enqueue.StateFailed, o.State, "%s (%q): %+v", id, poison[i], o)
		require.Equal(t, "INVALID_PAYLOAD", o.Error.ErrorCode)
		require.NotEmpty(t, o.Error.ErrorDescription)
		stdout, stderr, code := runCLI(t, s.env(), nil, "status", id)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stdout, "failed")
		require.Contains(t, stdout, "INVALID_PAYLOAD")
	}
	require.True(t, waitFor(hangGuard, func() bool {
		info, err := s.inspector.GetTaskInfo("default", "stranger")
		return err == nil && info.State == asynq.TaskStateArchived
	}), "a task of another type was not set aside")
	select {
	case <-w.done:
		t.Fatalf("the worker exited: %v", w.err)
	default:
	}
}

// TestWorkerRefusesBadPolicy checks a worker given a bad --policy file does not start: exit
// status 2 and a message naming the file and the line at fault (before Redis is even asked).
func TestWorkerRefusesBadPolicy(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := []struct {
		name, content string
		want          []string
	}{
		{"unknown decision", "codes:\n  CAPTCHA_UNSOLVABLE: retri\n", []string{"line 2", `unknown decision "retri"`}},
		{"yaml syntax", "retry:\n  maxRetries: 3\n bad", []string{"line 2"}},
		{"zero budget", "# ours\nretry:\n  maxRetries: 0\n", []string{"line 3", "retry.maxRetries"}},
		{"unknown key", "retries: 3\n", []string{"line 1", `unknown key "retries"`}},
		{"bad errorId", "codes:\n  RATE_LIMITED: {decision: throttle, errorId: 2}\n", []string{"line 2", "RATE_LIMITED"}},
		{"missing file", "", []string{"no such file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-")+".yaml")
			if tt.content != "" {
				require.NoError(t, os.WriteFile(path, []byte(tt.content), 0o644))
			}
			env := []string{"REDIS_URL=redis://127.0.0.1:1", "ANYSOLVER_API_KEY=" + stackAPIKey}
			stdout, stderr, code := runCLI(t, env, nil, "worker", "--policy", path)
			require.Equal(t, 2, code, "stdout: %s\nstderr: %s", stdout, stderr)
			require.Contains(t, stderr, path)
			for _, w := range tt.want {
				require.Contains(t, stderr, w)
			}
			require.NotContains(t, stdout+stderr, "worker started")
		})
	}
}

// TestThreeWorkersShare600Jobs runs three worker processes on one Redis: every job is solved
// by exactly one of them and paid exactly once.
func TestThreeWorkersShare600Jobs(t *testing.T) {
	t.Parallel()
	const jobs = 600
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	var workers []*proc
	for range 3 {
		// A worker holds at most 50 jobs, so that no two of them can take all 600 at once
		// while the third sleeps between fetches.
		workers = append(workers, s.startWorker(t, nil, "--poll-interval", "300ms", "--concurrency", "50"))
	}
	batch := make([]enqueue.Job, jobs)
	ids := make([]string, jobs)
	for i := range batch {
		ids[i] = fmt.Sprintf("shared-%d", i)
		batch[i] = recaptchaJob(ids[i], fmt.Sprintf("sq:id=%s;solve=%dms", ids[i], 300+i%5*200))
	}
	results, err := s.client.SubmitMany(context.Background(), batch, 32, nil)
	require.NoError(t, err)
	for _, r := range results {
		require.NoError(t, r.Err)
	}
	out := s.waitAll(t, ids, hangGuard)
	for i, id := range ids {
		require.Equal(t, enqueue.StateSolved, out[id].State, id)
		require.Equal(t, 1, s.fake.Creates(batch[i].Task["websiteKey"].(string)), "job %s was paid more than once", id)
	}
	require.Equal(t, jobs, s.fake.Stats().Created)
	ended := 0
	for i, w := range workers {
		n := len(scanLines(w.logs.String(), `"msg":"job ended"`))
		t.Logf("worker %d ended %d jobs", i+1, n)
		require.Positive(t, n, "worker %d did no work", i+1)
		ended += n
	}
	require.Equal(t, jobs, ended, "a job ended twice")
}

// TestSecretsStayOut runs jobs with proxy passwords (the proxyPassword field and a proxy URL)
// to every outcome, some meeting a provider that echoes the proxy in its errorDescription, then
// looks everywhere a secret could leak: the API key must be nowhere in Redis (every key, the
// AOF and an RDB snapshot); neither the key nor a proxy password may be in a log line (at debug
// level), /metrics, /readyz, the web UI's API, or any CLI output.
func TestSecretsStayOut(t *testing.T) {
	t.Parallel()
	const pwField, pwURL = "pp-field-S3cr3t-71f2a9", "pp-url-S3cr3t-9c4e07"
	s := newStack(t, enqueuetest.RedisOptions{AppendOnly: true, AppendFsync: "always"}, anysolvertest.Options{})
	// Some providers echo the proxy, password and all, in their errorDescription.
	f := newFront(t, s)
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, c frontCall) bool {
		code, ok := strings.CutPrefix(c.key, "echo:")
		if !ok || c.method != "createTask" || !c.first {
			return false
		}
		code, id, _ := strings.Cut(code, ";")
		desc := "proxy http://alice:" + pwURL + "@203.0.113.7:8080 refused the connection"
		if strings.Contains(id, "-field-") {
			desc = "proxy 203.0.113.7:8080 (login alice, password " + pwField + ") refused the connection"
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"errorId":1,"errorCode":%q,"errorDescription":%q}`, code, desc)
		return true
	})
	w := s.startWorker(t, nil, "--http", "127.0.0.1:0", "--poll-interval", "200ms", "--log-level", "debug")
	base := httpBase(t, w)

	proxies := map[string]string{
		"field": `"proxyType":"http","proxyAddress":"203.0.113.7","proxyPort":8080,"proxyLogin":"alice","proxyPassword":"` + pwField + `"`,
		"url":   `"proxy":"http://alice:` + pwURL + `@203.0.113.7:8080"`,
	}
	directives := map[string]string{"solved": "", "failed": "create=DOMAIN_BANNED*9", "dead": "create=UNKNOWN_PROVIDER_ERROR*9",
		"retried": "create=SERVICE_UNAVAILABLE", "pollfail": "failed=CAPTCHA_UNSOLVABLE"}
	var lines strings.Builder
	var ids []string
	for form, proxy := range proxies {
		for outcome, d := range directives {
			id := "secret-" + form + "-" + outcome
			ids = append(ids, id)
			fmt.Fprintf(&lines, `{"id":%q,"task":{"type":"RecaptchaV2Task","websiteURL":"https://shop.example/login","websiteKey":"sq:id=%s;%s",%s}}`+"\n", id, id, d, proxy)
		}
		for _, code := range []string{"PROXY_CONNECTION_FAILED", "PROXY_AUTH_FAILED", "SOME_NEW_PROXY_ERROR"} {
			id := "secret-" + form + "-echo-" + code
			ids = append(ids, id)
			fmt.Fprintf(&lines, `{"id":%q,"task":{"type":"RecaptchaV2Task","websiteURL":"https://shop.example/login","websiteKey":"echo:%s;%s",%s}}`+"\n", id, code, id, proxy)
		}
	}
	in := filepath.Join(t.TempDir(), "jobs.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	var shown strings.Builder // everything a person or a program is shown
	show := func(what, text string) { fmt.Fprintf(&shown, "\n--- %s\n%s", what, text) }

	stdout, stderr, code := runCLI(t, s.env(), nil, "batch", in)
	require.Equal(t, 0, code, stderr)
	require.Len(t, strings.Split(strings.TrimSpace(stdout), "\n"), len(ids))
	show("batch", stdout+stderr)
	stdout, stderr, code = runCLI(t, s.env(), nil, "enqueue", "--wait", "--timeout", "3m", "--json",
		`{"id":"secret-cli","task":{"type":"RecaptchaV2Task","websiteURL":"https://shop.example","websiteKey":"k",`+proxies["url"]+`}}`)
	require.Equal(t, 0, code, stderr)
	show("enqueue", stdout+stderr)
	ids = append(ids, "secret-cli")
	for _, id := range ids {
		for _, args := range [][]string{{"status", id}, {"status", id, "--json"}} {
			stdout, stderr, code := runCLI(t, s.env(), nil, args...)
			require.Equal(t, 0, code, stderr)
			show(strings.Join(args, " "), stdout+stderr)
		}
	}
	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "list", "--json"}} {
		stdout, stderr, code := runCLI(t, s.env(), nil, args...)
		require.Equal(t, 0, code, stderr)
		require.Contains(t, stdout, "secret-url-dead")
		show(strings.Join(args, " "), stdout+stderr)
	}
	paths := []string{"/metrics", "/readyz", "/monitoring/api/queues", "/monitoring/api/queue_stats"}
	for _, state := range []string{"pending", "active", "scheduled", "retry", "archived", "completed"} {
		paths = append(paths, "/monitoring/api/queues/default/"+state+"_tasks?page_size=100")
	}
	for _, id := range ids {
		paths = append(paths, "/monitoring/api/queues/default/tasks/"+id)
	}
	var ui strings.Builder
	for _, p := range paths {
		code, body := httpGet(t, base+p)
		require.Equal(t, 200, code, "%s: %s", p, body)
		show(p, body)
		ui.WriteString(body)
	}
	require.Contains(t, ui.String(), "proxyPassword", "the web UI shows the payloads")
	require.Contains(t, ui.String(), redact.Marker, "redacted")
	show("worker log", w.logs.String())
	for _, secret := range []string{stackAPIKey, pwField, pwURL} {
		require.NotContains(t, shown.String(), secret)
	}

	// Redis holds the proxy passwords (AnySolver needs them), never the API key.
	dump := redisDump(t, s.redis)
	require.Contains(t, dump, pwField, "the dump does not show job payloads: it proves nothing")
	require.Contains(t, dump, pwURL)
	require.NotContains(t, dump, stackAPIKey)
}

// redisDump returns everything a Redis holds, as text: every key's value read by its type, the
// append-only files, and an uncompressed RDB snapshot.
func redisDump(t *testing.T, r *enqueuetest.RedisServer) string {
	t.Helper()
	ctx := context.Background()
	rc, err := redisconn.Open(ctx, r.URL(), 0)
	require.NoError(t, err)
	defer rc.Close()
	var b strings.Builder
	b.WriteString(workertest.Dump(t, rc))
	require.NotEmpty(t, b.String())
	require.NoError(t, rc.ConfigSet(ctx, "rdbcompression", "no").Err())
	require.NoError(t, rc.Save(ctx).Err())
	files, _ := filepath.Glob(filepath.Join(r.Dir, "appendonlydir", "*"))
	files = append(files, filepath.Join(r.Dir, "dump.rdb"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		b.Write(data)
	}
	return b.String()
}

// recaptchaJob is a token job whose websiteKey scripts the fake.
func recaptchaJob(id, websiteKey string) enqueue.Job {
	return enqueue.Job{ID: id, Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
		"websiteURL": "https://shop.example/login", "websiteKey": websiteKey}}
}

// httpBase returns the base URL of a worker started with --http 127.0.0.1:0, from its log.
func httpBase(t *testing.T, w *proc) string {
	t.Helper()
	require.True(t, w.waitForLog("serving the web UI and metrics", hangGuard))
	for _, line := range scanLines(w.logs.String(), "serving the web UI and metrics") {
		var v struct{ URL string }
		if json.Unmarshal([]byte(line), &v) == nil && v.URL != "" {
			return strings.TrimSuffix(v.URL, "/monitoring/")
		}
	}
	t.Fatalf("no URL in the worker's log:\n%s", w.logs.String())
	return ""
}

// httpGet fetches url (bounded) and returns the status and the body.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: hangGuard}
	resp, err := c.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// front sits between the worker and the fake AnySolver: it records every call (when, which
// method, which job) and can answer calls itself with what the fake does not have.
type front struct {
	fake *anysolvertest.Server
	srv  *httptest.Server
	// intercept, when set, may answer a call itself (and return true) instead of the fake.
	intercept func(w http.ResponseWriter, r *http.Request, c frontCall) bool

	mu    sync.Mutex
	calls []frontCall
	keyOf map[string]string // remote task id → the websiteKey of its job
	seen  map[string]bool   // method + key, for frontCall.first
}

// frontCall is one call the front saw.
type frontCall struct {
	at     time.Time
	took   time.Duration
	method string
	key    string // the job's websiteKey; for a poll, the key of the polled task
	first  bool   // the first call of this method for this key
}

// newFront puts a front before the stack's fake; call it before starting workers.
// setIntercept sets intercept; the worker may already be calling (its balance reader does at
// start), so it is guarded like the rest of the front's state.
func (f *front) setIntercept(fn func(w http.ResponseWriter, r *http.Request, c frontCall) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.intercept = fn
}

func (f *front) interceptor() func(w http.ResponseWriter, r *http.Request, c frontCall) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.intercept
}

func newFront(t *testing.T, s *stack) *front {
	t.Helper()
	f := &front{fake: s.fake, keyOf: map[string]string{}, seen: map[string]bool{}}
	f.srv = httptest.NewServer(f)
	t.Cleanup(f.srv.Close)
	s.fakeURL = f.srv.URL
	return f
}

func (f *front) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	r.Body = io.NopCloser(bytes.NewReader(body))
	c := frontCall{at: time.Now(), method: path.Base(r.URL.Path)}
	var req struct {
		Task   map[string]any  `json:"task"`
		TaskID json.RawMessage `json:"taskId"`
	}
	_ = json.Unmarshal(body, &req)
	f.mu.Lock()
	if c.method == "createTask" {
		c.key, _ = req.Task["websiteKey"].(string)
	} else if len(req.TaskID) > 0 {
		c.key = f.keyOf[strings.Trim(string(req.TaskID), `"`)]
	}
	c.first = !f.seen[c.method+" "+c.key]
	f.seen[c.method+" "+c.key] = true
	f.mu.Unlock()
	defer func() {
		c.took = time.Since(c.at)
		f.mu.Lock()
		f.calls = append(f.calls, c)
		f.mu.Unlock()
	}()
	if intercept := f.interceptor(); intercept != nil && intercept(w, r, c) {
		return
	}
	if c.method != "createTask" {
		f.fake.ServeHTTP(w, r)
		return
	}
	cw := &captureWriter{ResponseWriter: w}
	f.fake.ServeHTTP(cw, r)
	var answer struct {
		TaskID json.RawMessage `json:"taskId"`
	}
	if json.Unmarshal(cw.head.Bytes(), &answer) == nil && len(answer.TaskID) > 0 {
		f.mu.Lock()
		f.keyOf[strings.Trim(string(answer.TaskID), `"`)] = c.key
		f.mu.Unlock()
	}
}

// snapshot returns the calls seen so far, in the order they ended.
func (f *front) snapshot() []frontCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// captureWriter keeps the start of an answer; it passes Flush and Hijack through, so the
// fake's streaming and reset faults still work behind it.
type captureWriter struct {
	http.ResponseWriter
	head bytes.Buffer
}

func (c *captureWriter) Write(p []byte) (int, error) {
	if room := 4096 - c.head.Len(); room > 0 {
		c.head.Write(p[:min(len(p), room)])
	}
	return c.ResponseWriter.Write(p)
}

func (c *captureWriter) Flush() {
	if fl, ok := c.ResponseWriter.(http.Flusher); ok {
		fl.Flush()
	}
}

func (c *captureWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(c.ResponseWriter).Hijack()
}

// TestSoakCommand runs a short `solvequeue soak --json` on a stack's Redis: samples at the
// start, under load and drained, a verdict, and a refusal of an interval that leaves nothing to
// compare.
func TestSoakCommand(t *testing.T) {
	t.Parallel()
	r := enqueuetest.Redis(t)
	env := []string{"REDIS_URL=" + r.URL()}
	_, stderr, code := runCLI(t, env, nil, "soak", "--duration", "10s", "--interval", "6s")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "at least two intervals")

	stdout, stderr, code := runCLI(t, env, nil, "soak", "--duration", "6s", "--interval", "2s", "--rate", "10", "--json")
	require.Contains(t, []int{0, 1}, code, "a short soak is flat or not, nothing else: %s", stderr)
	var report struct {
		Samples []struct {
			Phase      string `json:"phase"`
			Goroutines int    `json:"goroutines"`
		} `json:"samples"`
		Totals struct {
			Submitted, Lost int64
		} `json:"totals"`
		Checks []json.RawMessage `json:"checks"`
		Flat   bool              `json:"flat"`
	}
	require.NoError(t, json.Unmarshal([]byte(stdout), &report), stdout)
	require.Equal(t, "start", report.Samples[0].Phase)
	require.Equal(t, "drained", report.Samples[len(report.Samples)-1].Phase)
	require.GreaterOrEqual(t, len(report.Samples), 4)
	require.Positive(t, report.Totals.Submitted)
	require.Zero(t, report.Totals.Lost)
	require.Len(t, report.Checks, 5)
	require.Equal(t, report.Flat, code == 0)
	require.Contains(t, stderr, "GOROUTINES", "the samples go to stderr beside --json")
}

// TestWaitRidesOutAHungRedis freezes Redis while a producer waits on more jobs than its
// connection pool holds: the errors that brings (i/o timeouts, "connection pool timeout") are
// a Redis outage, not an answer, so no job is reported as ended or missing meanwhile.
func TestWaitRidesOutAHungRedis(t *testing.T) {
	t.Parallel()
	r := enqueuetest.Redis(t)
	rc := redis.NewClient(&redis.Options{Addr: r.Addr, PoolSize: 1, PoolTimeout: 200 * time.Millisecond, ReadTimeout: time.Second})
	t.Cleanup(func() { rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	ctx := context.Background()
	refs := make([]enqueue.JobRef, 4)
	for i := range refs {
		id, err := client.Submit(ctx, recaptchaJob(fmt.Sprintf("waiting-%d", i), "k")) // no worker: they stay pending
		require.NoError(t, err)
		refs[i] = enqueue.JobRef{ID: id, Queue: enqueue.DefaultQueue}
	}
	pid := redisPID(t, r)
	require.NoError(t, syscall.Kill(pid, syscall.SIGSTOP))
	thaw := time.AfterFunc(3*time.Second, func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	t.Cleanup(func() { thaw.Stop(); _ = syscall.Kill(pid, syscall.SIGCONT) })

	wctx, cancel := context.WithTimeout(ctx, 6*time.Second)
	defer cancel()
	var reported []string
	err = client.WaitMany(wctx, refs, len(refs), func(ref enqueue.JobRef, o enqueue.Outcome, err error) {
		reported = append(reported, fmt.Sprintf("%s: %s %v", ref.ID, o.State, err))
	})
	require.ErrorIs(t, err, context.DeadlineExceeded, "the jobs are still pending: waiting must go on")
	require.Empty(t, reported, "a hung Redis was taken for an answer")
}
