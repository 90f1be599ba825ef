package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/internal/redisserver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// This file runs solvequeue on Redis's own distribution, real servers on loopback ports: a
// primary with a replica and a Sentinel (the primary SIGKILLed in the middle of a batch), and a
// three-node Redis Cluster with two workers over four queues spread over its nodes.

// distStack is a world on a Redis given by URL (a Sentinel's or a cluster's): the fake AnySolver
// on loopback and a producer client on that URL.
type distStack struct {
	url     string
	fake    *anysolvertest.Server
	fakeURL string
	rc      redis.UniversalClient
	client  *enqueue.Client
}

func newDistStack(t *testing.T, url string) *distStack {
	t.Helper()
	fake, srv := anysolvertest.NewServer(anysolvertest.Options{APIKeys: []string{stackAPIKey},
		Script: anysolvertest.DirectiveScript(nil)})
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close)
	rc, err := redisconn.Open(context.Background(), url, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	return &distStack{url: url, fake: fake, fakeURL: srv.URL, rc: rc, client: client}
}

func (s *distStack) env(extra ...string) []string {
	return append([]string{"REDIS_URL=" + s.url, "ANYSOLVER_URL=" + s.fakeURL,
		"ANYSOLVER_API_KEY=" + stackAPIKey, "SOLVEQUEUE_LOG_FORMAT=json"}, extra...)
}

func (s *distStack) startWorker(t *testing.T, args ...string) *proc {
	t.Helper()
	p := startProc(t, s.env(), append([]string{"worker"}, args...)...)
	require.True(t, p.waitForLog(`"worker started"`, hangGuard), "worker did not start:\n%s", p.logs.String())
	return p
}

// jobLine is a batch line for a job with id in queue whose fake behaviour is the directive.
func jobLine(id, queue, directive string) string {
	q := ""
	if queue != "" {
		q = fmt.Sprintf(`"queue":%q,`, queue)
	}
	return fmt.Sprintf(`{"id":%q,%s"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":%q}}`,
		id, q, "sq:id="+id+";"+directive)
}

// TestSentinelFailoverMidBatch kills the Redis primary with SIGKILL while a worker and a waiting
// `batch` run on redis-sentinel://: the Sentinel promotes the replica and both carry on by
// themselves, every job is solved, and no job is paid twice. It logs what the failover cost:
// jobs lost, createTask calls per job and seconds from the kill until a job completes on the
// promoted primary (the README's figures come from this test).
func TestSentinelFailoverMidBatch(t *testing.T) {
	t.Parallel()
	const jobs = 100
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{DownAfter: time.Second})
	s := newDistStack(t, g.URL())
	w := s.startWorker(t, "--queues", "default=1", "--concurrency", "25", "--poll-interval", "300ms")

	dir := t.TempDir()
	var lines strings.Builder
	for i := range jobs {
		fmt.Fprintln(&lines, jobLine(fmt.Sprintf("fo-%d", i), "", fmt.Sprintf("solve=%dms", 600+i%5*300)))
	}
	in, out := filepath.Join(dir, "jobs.jsonl"), filepath.Join(dir, "outcomes.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	batch := startProc(t, s.env(), "batch", in, "--out", out)

	require.True(t, waitFor(hangGuard, func() bool { return s.fake.Stats().Solved >= jobs/3 }), "no progress before the kill")
	inspector := asynq.NewInspectorFromRedisClient(s.rc)
	old := g.Primary.Addr
	killed := time.Now()
	require.NoError(t, g.Primary.Kill())
	promoted, err := g.WaitFailover(t.Context(), old)
	require.NoError(t, err)
	failover := time.Since(killed)
	// Recovered: one more job completes on the promoted primary than it held when promoted.
	var atPromotion *asynq.QueueInfo
	require.True(t, waitFor(hangGuard, func() bool {
		atPromotion, err = inspector.GetQueueInfo(enqueue.DefaultQueue)
		return err == nil
	}), "the promoted primary does not answer: %v", err)
	require.True(t, waitFor(hangGuard, func() bool {
		info, err := inspector.GetQueueInfo(enqueue.DefaultQueue)
		return err == nil && info.Completed > atPromotion.Completed
	}), "no job completed after the failover")
	recovered := time.Since(killed)

	select {
	case <-batch.done:
	case <-time.After(hangGuard + 3*time.Minute):
		t.Fatalf("batch did not finish; its output:\n%s", tail(batch.logs.String(), 40))
	}
	require.NoError(t, batch.err, "batch output:\n%s", batch.logs.String())
	outcomes := readOutcomes(t, out)
	require.Len(t, outcomes, jobs)
	for id, o := range outcomes {
		require.Equal(t, enqueue.StateSolved, o.State, "job %s: %+v", id, o)
	}
	creates := s.fake.Stats().CreateTask
	lost := 0
	for _, l := range scanLines(batch.logs.String(), "missing from Redis while waiting") {
		_, _ = fmt.Sscanf(l, "%d", &lost)
	}
	t.Logf("failover figures: jobs %d, jobs lost %d, createTask per job %.3f, Sentinel promoted %s after %.1fs, "+
		"first job completed on it %.1fs after the SIGKILL", jobs, lost, float64(creates)/jobs, promoted,
		failover.Seconds(), recovered.Seconds())
	require.Equal(t, jobs, creates, "a paid task is never paid again across the failover")

	// Every command works on the Sentinel URL after the failover.
	res := cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "status", "fo-7")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "solved")
	res = cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "dlq", "list")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "the dead-letter queue is empty")
	stdout, stderr, code := runCLI(t, s.env(), nil, "enqueue", "--id", "after-failover", "--type", "RecaptchaV2TaskProxyless",
		"--field", "websiteURL=https://shop.example/", "--field", "websiteKey=sq:solve=100ms", "--wait")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stdout, `"solved"`)
	require.True(t, w.waitForLog("redis reachable again", hangGuard), "the worker says Redis came back")
}

// TestBatchResubmitsAMissingJob: a job gone from Redis while `batch` waits for it (what a
// failover's lost writes look like) is submitted again under its ID, and solved.
func TestBatchResubmitsAMissingJob(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	dir := t.TempDir()
	var lines strings.Builder
	for i := range 3 {
		fmt.Fprintln(&lines, jobLine(fmt.Sprintf("miss-%d", i), "", "solve=50ms"))
	}
	in, out := filepath.Join(dir, "jobs.jsonl"), filepath.Join(dir, "outcomes.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	batch := startProc(t, s.env(), "batch", in, "--out", out)
	require.True(t, batch.waitForLog("submitted 3 of 3 jobs", hangGuard), batch.logs.String())
	require.NoError(t, s.inspector.DeleteTask(enqueue.DefaultQueue, "miss-1"), "as a failover's lost writes would")
	require.True(t, batch.waitForLog("1 job missing from Redis while waiting", hangGuard), batch.logs.String())

	s.startWorker(t, nil, "--queues", "default=1", "--poll-interval", "100ms")
	select {
	case <-batch.done:
	case <-time.After(hangGuard):
		t.Fatalf("batch did not finish:\n%s", batch.logs.String())
	}
	require.NoError(t, batch.err, batch.logs.String())
	outcomes := readOutcomes(t, out)
	require.Len(t, outcomes, 3)
	for id, o := range outcomes {
		require.Equal(t, enqueue.StateSolved, o.State, "job %s", id)
	}
	require.Equal(t, 3, s.fake.Stats().CreateTask)
}

// TestClusterTwoWorkersFourQueues runs two workers over four queues on a three-node Redis
// Cluster, the queues on different slots and nodes: solved, retried, failed and dead jobs, the
// dead-letter list and redrive, the account breaker pausing and resuming every queue, a spend
// cap, and a scraper's task through the gateway. Then every key solvequeue wrote is checked:
// each carries its queue's hash tag, or is one of the few single keys the README lists.
func TestClusterTwoWorkersFourQueues(t *testing.T) {
	t.Parallel()
	cl := enqueuetest.Cluster(t, redisserver.ClusterOptions{})
	s := newDistStack(t, cl.URL())
	ctx := t.Context()
	cc, ok := s.rc.(*redis.ClusterClient)
	require.True(t, ok, "redis-cluster:// opens go-redis's ClusterClient, got %T", s.rc)
	queues, err := cl.SpreadQueues(ctx, "scale-", 4)
	require.NoError(t, err)
	capped := queues[3]

	dir := t.TempDir()
	policy := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(policy, []byte("retry: {baseDelay: 200ms, maxDelay: 1s}\nqueues:\n  "+capped+":\n    budget: {window: 10s, maxCreateTasks: 2}\n"), 0o644))
	weights := make([]string, len(queues))
	for i, q := range queues {
		weights[i] = q + "=1"
	}
	args := []string{"--queues", strings.Join(weights, ","), "--policy", policy, "--concurrency", "20", "--poll-interval", "100ms"}
	// The second worker also serves the gateway, its key's jobs going to the third queue.
	const gatewayKey = "gk-cluster-test-7a1c9e5b3d2f4608"
	keysFile := filepath.Join(dir, "keys.yaml")
	require.NoError(t, os.WriteFile(keysFile, []byte("keys:\n  - name: scrapers\n    key: "+gatewayKey+"\n    queue: "+queues[2]+"\n"), 0o600))
	gateway := freeLoopbackAddr(t)
	w1, w2 := s.startWorker(t, args...), s.startWorker(t, append(args, "--gateway", gateway, "--keys", keysFile)...)
	logs := func() string { return w1.logs.String() + w2.logs.String() }
	require.True(t, w2.waitForLog("serving AnySolver's API", hangGuard), "the gateway did not start:\n%s", w2.logs.String())

	// The breaker first: one account error pauses every queue, a probe resumes them.
	in := filepath.Join(dir, "breaker.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(jobLine("brk", queues[0], "create=ERROR_ZERO_BALANCE*1")+"\n"), 0o644))
	out, stderr, code := runCLI(t, s.env(), nil, "batch", in)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, `"ERROR_ZERO_BALANCE"`)
	require.True(t, waitFor(hangGuard, func() bool { return strings.Contains(logs(), "breaker closed") }), logs())
	opened := scanLines(logs(), "breaker open")
	require.Len(t, opened, 1, logs())
	closed := scanLines(logs(), "breaker closed")
	require.Len(t, closed, 1, logs())
	for _, q := range queues {
		require.Contains(t, opened[0], `"`+q+`"`, "the breaker paused %s", q)
		require.Contains(t, closed[0], `"`+q+`"`, "the breaker resumed %s", q)
		info, err := asynq.NewInspectorFromRedisClient(s.rc).GetQueueInfo(q)
		if err == nil {
			require.False(t, info.Paused, "queue %s runs again", q)
		}
		require.Zero(t, s.rc.Exists(ctx, "solvequeue:{"+q+"}:breaker:paused").Val(), "no breaker mark left on %s", q)
	}

	// Every outcome path in every queue, and a spend cap.
	var lines strings.Builder
	var want []string
	for _, q := range queues[:3] {
		for kind, directive := range map[string]string{"solved": "solve=100ms", "retried": "create=SERVICE_UNAVAILABLE*1;solve=100ms",
			"failed": "create=DOMAIN_BANNED", "dead": "create=UNKNOWN_PROVIDER_ERROR*1;solve=100ms"} {
			id := q + "-" + kind
			fmt.Fprintln(&lines, jobLine(id, q, directive))
			want = append(want, id)
		}
	}
	for i := range 4 {
		fmt.Fprintln(&lines, jobLine(fmt.Sprintf("%s-cap-%d", capped, i), capped, "solve=100ms"))
	}
	// An image too big to ride in the payload travels under a key of its own, its queue's too; it
	// dies once, so its body is kept for the redrive.
	image := queues[1] + "-image"
	fmt.Fprintf(&lines, `{"id":%q,"queue":%q,"task":{"type":"ImageToTextTask","body":"iVBORw0KGgoA%s","websiteKey":"sq:id=%s;create=UNKNOWN_PROVIDER_ERROR*1"}}`+"\n",
		image, queues[1], strings.Repeat("AAAA", 6000), image)
	in = filepath.Join(dir, "jobs.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	outPath := filepath.Join(dir, "outcomes.jsonl")
	_, stderr, code = runCLI(t, s.env(), nil, "batch", in, "--out", outPath)
	require.Equal(t, 0, code, stderr)
	outcomes := readOutcomes(t, outPath)
	require.Len(t, outcomes, 17)
	require.Equal(t, enqueue.StateDead, outcomes[image].State)
	for _, q := range queues[:3] {
		require.Equal(t, enqueue.StateSolved, outcomes[q+"-solved"].State)
		require.Equal(t, enqueue.StateSolved, outcomes[q+"-retried"].State)
		require.Equal(t, 1, outcomes[q+"-retried"].Retries)
		require.Equal(t, enqueue.StateFailed, outcomes[q+"-failed"].State)
		require.Equal(t, enqueue.StateDead, outcomes[q+"-dead"].State)
	}
	for i := range 4 {
		require.Equal(t, enqueue.StateSolved, outcomes[fmt.Sprintf("%s-cap-%d", capped, i)].State)
	}
	require.True(t, strings.Contains(logs(), "budget spent: queue paused"), "the spend cap held jobs:\n%s", logs())
	res := cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "budget", "--json", "--policy", policy)
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, `"queue":"`+capped+`"`)

	// A scraper through the gateway: createTask (with an Idempotency-Key), then getTaskResult.
	created := gatewayCall(t, gateway, "createTask", "gw-1", map[string]any{"clientKey": gatewayKey,
		"task": map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/", "websiteKey": "sq:id=gw-1;solve=100ms"}})
	require.EqualValues(t, 0, created["errorId"], "%v", created)
	require.True(t, waitFor(hangGuard, func() bool {
		got := gatewayCall(t, gateway, "getTaskResult", "", map[string]any{"clientKey": gatewayKey, "taskId": created["taskId"]})
		return got["status"] == "ready"
	}), "the gateway's task is solved")
	require.Equal(t, 1, s.fake.Creates("sq:id=gw-1;solve=100ms"))

	// The dead letters of three queues on three nodes: listed, found by status, redriven.
	res = cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "dlq", "list", "--json")
	require.Equal(t, 0, res.code, res.stderr)
	var dead []string
	for _, l := range strings.Split(strings.TrimSpace(res.stdout), "\n") {
		var o enqueue.Outcome
		require.NoError(t, json.Unmarshal([]byte(l), &o), l)
		dead = append(dead, o.ID)
	}
	require.ElementsMatch(t, []string{queues[0] + "-dead", queues[1] + "-dead", queues[2] + "-dead", image}, dead)
	tagged := requireKeysTagged(t, cc, queues)
	for _, q := range queues[:3] {
		require.Contains(t, tagged, keys.DeadLetters(q))
	}
	require.Contains(t, tagged, budgetKey(capped))
	require.True(t, slices.ContainsFunc(tagged, func(k string) bool {
		return strings.HasPrefix(k, "solvequeue:gateway:{"+queues[2]+"}:idem:")
	}), "the gateway's Idempotency-Key, under its key's queue's tag: %v", tagged)
	require.True(t, slices.ContainsFunc(tagged, func(k string) bool {
		return strings.HasPrefix(k, keys.BodyPrefix+"{"+queues[1]+"}:")
	}), "the dead image's body, under its queue's tag: %v", tagged)
	res = cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "status", queues[2]+"-dead")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "dead")
	res = cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "dlq", "redrive", "--all")
	require.Equal(t, 0, res.code, res.stderr)
	for _, id := range dead {
		o, err := s.client.Wait(ctx, id)
		require.NoError(t, err)
		require.Equal(t, enqueue.StateSolved, o.State, "redriven %s", id)
	}
	res = cliRun(t, map[string]string{"REDIS_URL": s.url}, "", "dlq", "list")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "the dead-letter queue is empty")

	requireKeysTagged(t, cc, queues)
}

func budgetKey(queue string) string { return keys.Budget(queue) }

// singleKeys are the keys solvequeue writes that belong to no queue (the README's table).
var singleKeys = []string{keys.Queues, "solvequeue:breaker", "solvequeue:anysolver:balance", keys.DeadLettersRefused,
	"solvequeue:gateway:taskid", "solvequeue:gateway:taskid-secret", keys.GatewayKeyNames}

// requireKeysTagged scans every node: each solvequeue key carries one of the queues' hash tags
// (so it lives on the queue's slot) or is a single key of singleKeys, a provider breaker or the
// providers' tally.
func requireKeysTagged(t *testing.T, cc *redis.ClusterClient, queues []string) []string {
	t.Helper()
	ctx := t.Context()
	var (
		mu    sync.Mutex // ForEachMaster calls on every node at once
		found []string
	)
	require.NoError(t, cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
		iter := node.Scan(ctx, 0, "solvequeue:*", 1000).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			found = append(found, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}))
	require.NotEmpty(t, found)
	tagged := 0
	for _, k := range found {
		if slices.Contains(singleKeys, k) || strings.HasPrefix(k, "solvequeue:provider:") ||
			strings.HasPrefix(k, strings.TrimSuffix(keys.ProviderTally(0), "0")) {
			continue
		}
		open, end := strings.Index(k, "{"), strings.Index(k, "}")
		require.True(t, open >= 0 && end > open, "key %q carries no hash tag", k)
		require.Contains(t, queues, k[open+1:end], "key %q is tagged with no queue", k)
		tagged++
	}
	require.Positive(t, tagged)
	t.Logf("%d solvequeue keys on the cluster, %d of them under a queue's hash tag: %v", len(found), tagged, found)
	return found
}

// gatewayCall posts an AnySolver method to the gateway and decodes its answer.
func gatewayCall(t *testing.T, addr, method, idempotencyKey string, body map[string]any) map[string]any {
	t.Helper()
	out, err := postGateway(t.Context(), addr, method, idempotencyKey, body)
	require.NoError(t, err)
	return out
}

// postGateway posts an AnySolver method to the gateway at addr and decodes its answer; an error
// is no answer at all (the gateway unreachable), or one that is not JSON.
func postGateway(ctx context.Context, addr, method, idempotencyKey string, body map[string]any) (map[string]any, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/"+method, bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	return out, json.NewDecoder(resp.Body).Decode(&out)
}
