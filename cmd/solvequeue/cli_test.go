package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// This file drives the CLI in process through run(ctx, env, args), with buffers for its
// output and a map for its environment: what a user types and sees, without building the binary.

// cliResult is what one in-process run printed and returned.
type cliResult struct {
	code           int
	stdout, stderr string
}

// cliRun runs the CLI with args, the environment vars (nothing else is inherited) and stdin.
func cliRun(t *testing.T, vars map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	var stdout, stderr bytes.Buffer
	env := &Env{Stdin: strings.NewReader(stdin), Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return vars[k] }}
	code := run(ctx, env, args)
	return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// cliRedis is a real redis-server for one test, with a client to look inside it.
func cliRedis(t *testing.T) (url string, rc redis.UniversalClient) {
	t.Helper()
	srv := enqueuetest.Redis(t)
	rc, err := redisconn.Open(context.Background(), srv.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	return srv.URL(), rc
}

// cliRequireEmpty fails unless the Redis holds no key at all.
func cliRequireEmpty(t *testing.T, rc redis.UniversalClient) {
	t.Helper()
	keys, err := rc.Keys(context.Background(), "*").Result()
	require.NoError(t, err)
	require.Empty(t, keys, "nothing may reach Redis")
}

func cliWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// designDecisions is the contract's default classification, written out by hand from its table:
// every seed code with its decision and errorId.
var designDecisions = map[string]struct {
	decision string
	errorID  int
}{
	"INTERNAL_ERROR": {"retry", 2}, "PROVIDER_BALANCE_ERROR": {"retry", 2}, "PROVIDER_RESPONSE_MALFORMED": {"retry", 2},
	"PROVIDER_UNREACHABLE": {"retry", 2}, "TRANSFORMATION_ERROR": {"retry", 2}, "VALIDATION_ERROR": {"retry", 2},
	"SERVICE_UNAVAILABLE": {"retry", 1}, "TASK_TIMEOUT": {"retry", 1}, "TOKEN_EXPIRED": {"retry", 1}, "TASK_NOT_FOUND": {"retry", 1},
	"CAPTCHA_UNSOLVABLE": {"retry", 1}, "PROXY_CONNECTION_FAILED": {"retry", 1}, "PROXY_BANNED": {"retry", 1},

	"RATE_LIMITED": {"throttle", 1}, "PROVIDER_RATE_LIMITED": {"throttle", 2}, "PROVIDER_GLOBAL_LIMIT_REACHED": {"throttle", 2},

	"ERROR_ZERO_BALANCE": {"failed", 1}, "DOMAIN_BANNED": {"failed", 1}, "INVALID_SITEKEY": {"failed", 1},
	"INVALID_DOMAIN": {"failed", 1}, "INVALID_WEBSITEURL": {"failed", 1}, "INVALID_TASK_DATA": {"failed", 1},
	"INVALID_USERAGENT": {"failed", 1}, "IMAGE_CORRUPTED": {"failed", 1}, "IMAGE_TOO_LARGE": {"failed", 1},
	"IMAGE_TOO_SMALL": {"failed", 1}, "TASK_NOT_SUPPORTED": {"failed", 1}, "PROVIDER_TASK_NOT_SUPPORTED": {"failed", 1},
	"PROXY_AUTH_FAILED": {"failed", 1}, "PROXY_INCOMPATIBLE": {"failed", 1}, "PROXY_MISSING": {"failed", 1},

	"ERROR_KEY_DOES_NOT_EXIST": {"dead", 1}, "ERROR_USER_BANNED": {"dead", 1}, "NO_PROVIDERS_AVAILABLE": {"dead", 1},
	"UNKNOWN_PROVIDER_ERROR": {"dead", 1}, "PROVIDER_BALANCE_NOT_SUPPORTED": {"dead", 1},
}

func TestCLIPolicyJSON(t *testing.T) {
	t.Parallel()
	require.Len(t, designDecisions, 36)
	res := cliRun(t, nil, "", "policy", "--json")
	require.Equal(t, 0, res.code, res.stderr)

	// The exact shape: {"codes":[{"errorId","errorCode","decision","reason"}]} and nothing else.
	var doc map[string][]map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &doc), res.stdout)
	require.Len(t, doc, 1)
	codes, ok := doc["codes"]
	require.True(t, ok, "the one key is \"codes\"")
	require.Len(t, codes, 36, "every seed code, and only those")
	perID := map[int]int{}
	prev := ""
	for _, c := range codes {
		require.ElementsMatch(t, []string{"errorId", "errorCode", "decision", "reason"}, mapKeys(c))
		var (
			id                     int
			code, decision, reason string
		)
		require.NoError(t, json.Unmarshal(c["errorId"], &id))
		require.NoError(t, json.Unmarshal(c["errorCode"], &code))
		require.NoError(t, json.Unmarshal(c["decision"], &decision))
		require.NoError(t, json.Unmarshal(c["reason"], &reason))
		want, known := designDecisions[code]
		require.True(t, known, "%s is not a seed code", code)
		require.Equal(t, want.decision, decision, "decision of %s", code)
		require.Equal(t, want.errorID, id, "errorId of %s", code)
		require.NotEmpty(t, reason, code)
		require.Greater(t, code, prev, "codes are sorted and listed once")
		prev = code
		perID[id]++
	}
	require.Equal(t, map[int]int{1: 28, 2: 8}, perID)
}

func TestCLIPolicyFile(t *testing.T) {
	t.Parallel()
	good := cliWriteFile(t, "policy.yaml", "retry:\n  maxRetries: 4\ncodes:\n  CAPTCHA_UNSOLVABLE: failed\n  MY_NEW_CODE: {decision: retry, reason: \"ours\", errorId: 2, custom: true}\n")
	res := cliRun(t, nil, "", "policy", "--policy", good, "--json")
	require.Equal(t, 0, res.code, res.stderr)
	var doc struct {
		Codes []classify.Rule `json:"codes"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &doc))
	require.Len(t, doc.Codes, 37, "the seed codes plus the one the file adds")
	byCode := map[string]classify.Rule{}
	for _, r := range doc.Codes {
		byCode[r.ErrorCode] = r
	}
	require.Equal(t, classify.Failed, byCode["CAPTCHA_UNSOLVABLE"].Decision)
	require.Equal(t, classify.Retry, byCode["MY_NEW_CODE"].Decision)

	table := cliRun(t, nil, "", "policy", "--policy", good)
	require.Equal(t, 0, table.code, table.stderr)
	require.Contains(t, table.stdout, "retry budget 4")
	require.Regexp(t, `(?m)^1\s+CAPTCHA_UNSOLVABLE\s+failed\s`, table.stdout)
	require.Regexp(t, `(?m)^0\s+TIMEOUT\s+retry\s`, table.stdout, "the table view shows the transport codes too")
}

func TestCLIPolicyBadFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, content, want string
	}{
		{"unknown decision", "retry:\n  maxRetries: 3\ncodes:\n  CAPTCHA_UNSOLVABLE: sometimes\n", "bad.yaml: line 4:"},
		{"YAML syntax", "codes:\n  CAPTCHA_UNSOLVABLE: failed\n   DOMAIN_BANNED: retry\n", "bad.yaml: line 3:"},
		{"unknown key", "retry:\n  maxRetries: 3\n  tries: 4\n", "bad.yaml: line 3:"},
		{"budget below 1", "\nretry:\n  maxRetries: 0\n", "bad.yaml: line 3:"},
		{"not UPPER_SNAKE", "codes:\n  captcha-unsolvable: failed\n", "bad.yaml: line 2:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := cliWriteFile(t, "bad.yaml", tt.content)
			res := cliRun(t, nil, "", "policy", "--policy", path)
			require.Equal(t, 2, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
			require.Contains(t, res.stderr, tt.want)
			require.Empty(t, res.stdout, "no table from a refused policy")
		})
	}
	t.Run("missing file", func(t *testing.T) {
		t.Parallel()
		res := cliRun(t, nil, "", "policy", "--policy", filepath.Join(t.TempDir(), "nope.yaml"))
		require.Equal(t, 2, res.code)
		require.Contains(t, res.stderr, "nope.yaml")
	})
}

func TestCLIEnqueueRefusesABadJob(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	vars := map[string]string{"REDIS_URL": url}
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{name: "json without websiteKey",
			args: []string{"--json", `{"id":"e1","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example"}}`},
			want: "task.websiteKey"},
		{name: "json with an unknown field",
			args: []string{"--json", `{"id":"e2","task":{"type":"X"},"priority":"high"}`}, want: "priority"},
		{name: "json from stdin, truncated", stdin: `{"task":{"type":"X"`, args: []string{"--json", "-"}, want: "truncated"},
		{name: "flags with a bad websiteURL",
			args: []string{"--type", "HCaptchaTaskProxyless", "--website-url", "shop.example", "--website-key", "k"}, want: "task.websiteURL"},
		{name: "image without body", args: []string{"--type", "ImageToTextTask"}, want: "task.body"},
		{name: "bad --field", args: []string{"--type", "X", "--field", "nonsense"}, want: "--field"},
		{name: "retry budget over the limit", args: []string{"--type", "X", "--max-retries", "101"}, want: "maxRetries"},
		{name: "garbage deadline", args: []string{"--type", "X", "--deadline", "whenever"}, want: "deadline"},
		{name: "bad queue", args: []string{"--type", "X", "--queue", "a b"}, want: "queue"},
		{name: "no job at all", args: nil, want: "--json"},
	}
	t.Run("bad", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				res := cliRun(t, vars, tt.stdin, append([]string{"enqueue"}, tt.args...)...)
				require.Equal(t, 2, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
				require.Contains(t, res.stderr, tt.want)
				require.Empty(t, res.stdout, "no job ID for a refused job")
			})
		}
	})
	cliRequireEmpty(t, rc)

	// The same Redis takes a good job: the check above could see one.
	res := cliRun(t, vars, "", "enqueue", "--id", "good-1", "--type", "RecaptchaV2TaskProxyless",
		"--website-url", "https://a.example", "--website-key", "6Le", "--field", "proxyPort=8080", "--field", "proxyType=http",
		"--field", "proxyAddress=10.0.0.1")
	require.Equal(t, 0, res.code, res.stderr)
	require.Equal(t, "good-1\n", res.stdout)
	require.Contains(t, res.stderr, `warning: no running worker serves queue "default": 1 job will wait there until one does`,
		"no worker runs in this test")
	info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(enqueue.DefaultQueue, "good-1")
	require.NoError(t, err)
	p, err := jobwire.DecodePayload(info.Payload)
	require.NoError(t, err)
	require.Equal(t, json.Number("8080"), p.Task["proxyPort"], "--field values that are JSON keep their type")

	again := cliRun(t, vars, "", "enqueue", "--id", "good-1", "--type", "RecaptchaV2TaskProxyless",
		"--website-url", "https://a.example", "--website-key", "6Le")
	require.Equal(t, 0, again.code, again.stderr)
	require.Equal(t, "good-1\n", again.stdout)
	require.Contains(t, again.stderr, "job good-1 was already queued (state pending): nothing new submitted")

	// --wait gives up after --timeout (10 minutes unless given), and says the job stays queued.
	waited := cliRun(t, vars, "", "enqueue", "--id", "good-1", "--type", "RecaptchaV2TaskProxyless",
		"--website-url", "https://a.example", "--website-key", "6Le", "--wait", "--timeout", "300ms")
	require.Equal(t, 1, waited.code, waited.stderr)
	require.Contains(t, waited.stderr, "no outcome within --timeout 300ms: the job good-1 stays queued")
	require.Equal(t, "10m0s", newEnqueueCmd(&Env{}).Flags().Lookup("timeout").DefValue)
}

func TestCLIBatchRefusesABadFile(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	vars := map[string]string{"REDIS_URL": url}
	file := `{"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"}}
{"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example"}}
# a comment
{"task":{"type":"TurnstileToken","websiteURL":"https://a.example","websiteKey":"0x4"},"retries":3}
{"task":{"type":"TurnstileToken","websiteURL":"https://a.example","websiteKey":"0x4"}}
`
	path := cliWriteFile(t, "jobs.jsonl", file)
	tests := []struct {
		name  string
		stdin string
		args  []string
	}{
		{name: "file", args: []string{"batch", path}},
		{name: "stdin", stdin: file, args: []string{"batch", "-"}},
		{name: "no-wait", args: []string{"batch", path, "--no-wait"}},
	}
	t.Run("bad", func(t *testing.T) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				res := cliRun(t, vars, tt.stdin, tt.args...)
				require.Equal(t, 2, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
				require.Contains(t, res.stderr, "line 2: task.websiteKey")
				require.Contains(t, res.stderr, "line 4: retries")
				require.Contains(t, res.stderr, "nothing submitted")
				require.NotContains(t, res.stderr, "line 1:")
				require.NotContains(t, res.stderr, "line 5:")
				require.Empty(t, res.stdout)
			})
		}
	})
	cliRequireEmpty(t, rc)

	empty := cliRun(t, vars, "# nothing here\n\n", "batch", "-")
	require.Equal(t, 2, empty.code)
	require.Contains(t, empty.stderr, "no jobs")
	missing := cliRun(t, vars, "", "batch", filepath.Join(t.TempDir(), "nope.jsonl"))
	require.Equal(t, 2, missing.code)
	require.Contains(t, missing.stderr, "nope.jsonl")
	cliRequireEmpty(t, rc)
}

// TestCLIBatchResumable runs the same batch file three times against a worker: submit only,
// then twice to completion. Only the first run submits; every run that waits writes every
// outcome; AnySolver is paid once per job.
func TestCLIBatchResumable(t *testing.T) {
	t.Parallel()
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{"sk-cli-test"},
		Script: anysolvertest.DirectiveScript(func(t anysolvertest.Task) anysolvertest.Behavior {
			b := anysolvertest.DefaultBehavior(t)
			b.SolveTime = 200 * time.Millisecond
			return b
		})})
	url, fake := rig.Redis.URL(), rig.Fake
	// The client's default Timeout: a shorter one turns a slow answer on a busy machine into a
	// retry, and a second createTask the counts below would take for paying twice.
	policy, err := policyfile.Parse("fast.yaml", []byte("retry:\n  baseDelay: 100ms\n  maxDelay: 200ms\n"))
	require.NoError(t, err)
	rig.Start(t, worker.Config{Policy: policy, Queues: map[string]int{enqueue.DefaultQueue: 1},
		Concurrency: 20, ShutdownTimeout: time.Second, Poll: worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	keys := map[string]enqueue.State{
		"cli-plain-1": enqueue.StateSolved, "cli-plain-2": enqueue.StateSolved,
		"sq:create=SERVICE_UNAVAILABLE*1;id=cli-su":     enqueue.StateSolved,
		"sq:create=DOMAIN_BANNED*9;id=cli-db":           enqueue.StateFailed,
		"sq:create=UNKNOWN_PROVIDER_ERROR*9;id=cli-upe": enqueue.StateDead,
	}
	var file strings.Builder
	file.WriteString("# resumable batch\n")
	wantByLine := map[int]enqueue.State{}
	for key, want := range keys {
		line, err := json.Marshal(enqueue.Job{Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
			"websiteURL": "https://a.example", "websiteKey": key}})
		require.NoError(t, err)
		file.Write(append(line, '\n'))
		wantByLine[len(wantByLine)+2] = want
	}
	file.WriteString(`{"id":"cli-own-id","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}` + "\n")
	wantByLine[len(wantByLine)+2] = enqueue.StateSolved
	jobsPath := cliWriteFile(t, "jobs.jsonl", file.String())
	vars := map[string]string{"REDIS_URL": url}
	total := len(keys) + 1

	submitOnly := cliRun(t, vars, "", "batch", jobsPath, "--no-wait")
	require.Equal(t, 0, submitOnly.code, submitOnly.stderr)
	require.Contains(t, submitOnly.stderr, "submitted 6 of 6 jobs (0 were submitted before: queued or already ended)")
	require.NotContains(t, submitOnly.stderr, "no running worker serves", "this test's worker serves the default queue")
	ids := strings.Fields(submitOnly.stdout)
	require.Len(t, ids, total, "--no-wait prints the job IDs")
	require.Contains(t, ids, "cli-own-id")

	readOutcomes := func(path string) map[string]enqueue.Outcome {
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		out := map[string]enqueue.Outcome{}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var o enqueue.Outcome
			require.NoError(t, json.Unmarshal(sc.Bytes(), &o), sc.Text())
			require.NotContains(t, out, o.ID, "one outcome line per job")
			require.Positive(t, o.Line, "an outcome names its line")
			out[o.ID] = o
		}
		require.NoError(t, sc.Err())
		return out
	}
	var runs []map[string]enqueue.Outcome
	for i := range 2 {
		outPath := filepath.Join(t.TempDir(), "outcomes.jsonl")
		res := cliRun(t, vars, "", "batch", jobsPath, "--out", outPath)
		require.Equal(t, 0, res.code, "run %d: %s", i, res.stderr)
		require.Contains(t, res.stderr, "submitted 0 of 6 jobs (6 were submitted before: queued or already ended)", "run %d", i)
		require.Contains(t, res.stderr, "outcomes: dead 1, failed 1, solved 4")
		runs = append(runs, readOutcomes(outPath))
	}
	require.Len(t, runs[0], total)
	for _, id := range ids {
		require.Contains(t, runs[0], id)
		require.Equal(t, runs[0][id].State, runs[1][id].State, "job %s ends the same on both runs", id)
		require.Equal(t, runs[0][id].Line, runs[1][id].Line)
	}
	for _, o := range runs[1] {
		require.Equal(t, wantByLine[o.Line], o.State, "job %s of line %d: %+v", o.ID, o.Line, o.Error)
	}
	for key := range keys {
		want := 1
		if strings.Contains(key, "SERVICE_UNAVAILABLE*1") {
			want = 2 // the refused createTask and the one that was solved
		}
		require.Equal(t, want, fake.Creates(key), "%s: createTask calls, however often the batch runs", key)
	}
	states := map[enqueue.State]int{}
	for _, o := range runs[1] {
		states[o.State]++
	}
	require.Equal(t, map[enqueue.State]int{enqueue.StateSolved: 4, enqueue.StateFailed: 1, enqueue.StateDead: 1}, states)

	// Jobs for a queue no worker serves: the batch says so, naming the queue, and submits them.
	nobody := cliWriteFile(t, "nobody.jsonl", `{"queue":"nobody","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}`+"\n"+
		`{"queue":"nobody","task":{"type":"ImageToTextTask","body":"iVBORw0KGgp="}}`+"\n")
	unserved := cliRun(t, vars, "", "batch", nobody, "--no-wait")
	require.Equal(t, 0, unserved.code, unserved.stderr)
	require.Contains(t, unserved.stderr, `warning: no running worker serves queue "nobody": 2 jobs will wait there until one does`)
	require.NotContains(t, unserved.stderr, `queue "default"`)

	// A job submitted again after it ended is said to have ended, with its state.
	var deadID string
	for _, o := range runs[1] {
		if o.State == enqueue.StateDead {
			deadID = o.ID
		}
	}
	for id, want := range map[string]string{
		"cli-own-id": "job cli-own-id already ended (state solved): nothing new submitted; 'solvequeue status cli-own-id' shows its outcome",
		deadID:       "job " + deadID + " already ended (state dead): nothing new submitted; 'solvequeue dlq redrive " + deadID + "' runs it again",
	} {
		again := cliRun(t, vars, "", "enqueue", "--id", id, "--type", "ImageToTextTask", "--field", "body=iVBORw0KGgo=")
		require.Equal(t, 0, again.code, again.stderr)
		require.Equal(t, id+"\n", again.stdout)
		require.Contains(t, again.stderr, want)
	}
}

// TestCLIDeadLetters lists, redrives and purges dead letters, and checks that a sweeping
// --all never comes from the environment.
func TestCLIDeadLetters(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	vars := map[string]string{"REDIS_URL": url}
	ctx := context.Background()
	payload := []byte(`{"v":1,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"},"submittedAt":"2026-01-02T03:04:05Z"}`)
	require.NoError(t, queuereg.Register(ctx, rc, enqueue.DefaultQueue), "as a worker of the queue does")
	for _, id := range []string{"dead-1", "dead-2", "dead-3"} {
		d := admin.DeadLetter{ID: id, Queue: enqueue.DefaultQueue, Payload: payload, DeadAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Record: jobwire.Record{State: enqueue.StateDead, Attempts: 11, Retries: 10,
				Error: &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "UNKNOWN_PROVIDER_ERROR", ErrorDescription: "provider said no", Decision: "dead"}}}
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, rc.HSet(ctx, keys.DeadLetters(d.Queue), keys.DeadLetterField(d.Queue, d.ID), raw).Err())
	}

	list := cliRun(t, vars, "", "dlq", "list")
	require.Equal(t, 0, list.code, list.stderr)
	require.Regexp(t, `(?m)^dead-1\s+default\s+2026-01-02T03:04:05Z\s+UNKNOWN_PROVIDER_ERROR\s+11\s+provider said no$`, list.stdout)

	for _, args := range [][]string{{"dlq", "purge"}, {"dlq", "redrive"}} {
		res := cliRun(t, map[string]string{"REDIS_URL": url, "SOLVEQUEUE_ALL": "true"}, "", args...)
		require.Equal(t, 2, res.code, "%v with SOLVEQUEUE_ALL=true must not act on every job: %s", args, res.stdout)
		require.Contains(t, res.stderr, "name the dead jobs by ID, or give --all")
	}
	n, err := rc.HLen(ctx, keys.DeadLetters(enqueue.DefaultQueue)).Result()
	require.NoError(t, err)
	require.EqualValues(t, 3, n, "nothing was purged or redriven")

	unknown := cliRun(t, vars, "", "dlq", "redrive", "nope")
	require.Equal(t, 2, unknown.code)
	require.Contains(t, unknown.stderr, `"nope" is not in the dead-letter queue`)

	redrive := cliRun(t, vars, "", "dlq", "redrive", "dead-1")
	require.Equal(t, 0, redrive.code, redrive.stderr)
	require.Equal(t, "1 job redriven\n", redrive.stdout)
	status := cliRun(t, vars, "", "status", "dead-1", "--json")
	require.Equal(t, 0, status.code, status.stderr)
	var out enqueue.Outcome
	require.NoError(t, json.Unmarshal([]byte(status.stdout), &out))
	require.Equal(t, enqueue.StatePending, out.State, "a redriven job waits for a worker")

	purge := cliRun(t, vars, "", "dlq", "purge", "--all", "--yes")
	require.Equal(t, 0, purge.code, purge.stderr)
	require.Equal(t, "2 jobs purged\n", purge.stdout)
	empty := cliRun(t, vars, "", "dlq", "list", "--json")
	require.Equal(t, 0, empty.code, empty.stderr)
	require.Empty(t, empty.stdout)

	// IDs are per queue: a dead job's ID in two queues is picked with --queue.
	for _, q := range []string{"default", "other"} {
		raw, err := json.Marshal(admin.DeadLetter{ID: "twin", Queue: q, Payload: payload, Record: jobwire.Record{State: enqueue.StateDead}})
		require.NoError(t, err)
		require.NoError(t, rc.HSet(ctx, keys.DeadLetters(q), keys.DeadLetterField(q, "twin"), raw).Err())
		require.NoError(t, queuereg.Register(ctx, rc, q))
	}
	twin := cliRun(t, vars, "", "dlq", "purge", "twin")
	require.Equal(t, 2, twin.code)
	require.Contains(t, twin.stderr, "two queues hold a dead job \"twin\": name its queue with --queue")
	twin = cliRun(t, vars, "", "dlq", "purge", "twin", "--queue", "other")
	require.Equal(t, 0, twin.code, twin.stderr)
	require.Equal(t, "1 job purged\n", twin.stdout)
	left, err := rc.HKeys(ctx, keys.DeadLetters("default")).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"default/twin"}, left)
	require.Zero(t, rc.Exists(ctx, keys.DeadLetters("other")).Val(), "the other queue's twin is purged")
}

// TestCLIRedriveFailed runs a failed job again with dlq redrive --failed, named by ID only: never
// with --all, never from the environment.
func TestCLIRedriveFailed(t *testing.T) {
	t.Parallel()
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{"sk-cli-test"},
		Script: anysolvertest.DirectiveScript(nil)})
	url, fake := rig.Redis.URL(), rig.Fake
	vars := map[string]string{"REDIS_URL": url}
	rig.Start(t, worker.Config{Queues: map[string]int{enqueue.DefaultQueue: 1},
		Concurrency: 5, ShutdownTimeout: time.Second, Poll: worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	job := `{"id":"order-44","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"sq:id=cli-f;create=DOMAIN_BANNED;solve=200ms"}}`
	sub := cliRun(t, vars, job, "enqueue", "--json", "-", "--wait")
	require.Equal(t, 0, sub.code, sub.stderr)
	require.Contains(t, sub.stdout, `"state":"failed"`)
	again := cliRun(t, vars, job, "enqueue", "--json", "-")
	require.Contains(t, again.stderr, "'solvequeue dlq redrive --failed order-44' runs it again")

	for _, tc := range []struct {
		vars map[string]string
		args []string
		want string
	}{
		{vars, []string{"dlq", "redrive", "--failed"}, "only the failed jobs you name by ID"},
		{vars, []string{"dlq", "redrive", "--failed", "--all"}, "only the failed jobs you name by ID"},
		{map[string]string{"REDIS_URL": url, "SOLVEQUEUE_FAILED": "true"}, []string{"dlq", "redrive", "order-44"}, `"order-44" is not in the dead-letter queue`},
		{vars, []string{"dlq", "redrive", "--failed", "nope"}, `"nope" is not a job in any queue`},
	} {
		res := cliRun(t, tc.vars, "", tc.args...)
		require.Equal(t, 2, res.code, "%v: %s", tc.args, res.stdout)
		require.Contains(t, res.stderr, tc.want)
	}
	require.Equal(t, 1, fake.Calls("createTask"), "nothing ran again")

	redrive := cliRun(t, vars, "", "dlq", "redrive", "--failed", "order-44")
	require.Equal(t, 0, redrive.code, redrive.stderr)
	require.Equal(t, "order-44 runs again in queue default\n1 failed job run again\n", redrive.stdout)
	wait := cliRun(t, vars, job, "enqueue", "--json", "-", "--wait")
	require.Equal(t, 0, wait.code, wait.stderr)
	require.Contains(t, wait.stdout, `"state":"solved"`)

	twice := cliRun(t, vars, "", "dlq", "redrive", "--failed", "order-44")
	require.Equal(t, 1, twice.code)
	require.Contains(t, twice.stderr, "not a failed job: it is solved in queue default")
	require.Equal(t, 2, fake.Calls("createTask"))
}

// TestCLIHelp checks every command's --help: exit 0, an example, and every flag's environment
// variable.
func TestCLIHelp(t *testing.T) {
	t.Parallel()
	var paths [][]string
	var walk func(c *cobra.Command, path []string)
	walk = func(c *cobra.Command, path []string) {
		paths = append(paths, path)
		for _, sub := range c.Commands() {
			if sub.Name() != "help" && !sub.Hidden {
				walk(sub, append(append([]string(nil), path...), sub.Name()))
			}
		}
	}
	walk(newRootCmd(&Env{Getenv: func(string) string { return "" }}), nil)
	require.GreaterOrEqual(t, len(paths), 12, "root, 8 commands, 3 dlq subcommands")
	for _, path := range paths {
		t.Run(strings.Join(append([]string{"solvequeue"}, path...), " "), func(t *testing.T) {
			t.Parallel()
			res := cliRun(t, nil, "", append(path, "--help")...)
			require.Equal(t, 0, res.code, res.stderr)
			require.Contains(t, res.stdout, "Examples:\n  ")
			cmd, _, err := newRootCmd(&Env{Getenv: func(string) string { return "" }}).Find(path)
			require.NoError(t, err)
			cmd.LocalFlags().VisitAll(func(f *pflag.Flag) {
				if f.Name == "help" {
					return
				}
				require.Contains(t, res.stdout, "--"+f.Name)
				if !readsEnv(f) {
					require.Contains(t, f.Usage, "command line only", "--%s says it reads no variable", f.Name)
					require.NotContains(t, res.stdout, "[$"+envName(f.Name)+"]")
					return
				}
				require.Contains(t, res.stdout, "[$"+envName(f.Name)+"]", "--%s shows its environment variable", f.Name)
			})
		})
	}
}

func TestCLIWorkerRefusesToStart(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vars map[string]string
		args []string
		want []string
	}{
		{name: "no API key", args: []string{"worker"}, want: []string{"ANYSOLVER_API_KEY"}},
		{name: "empty API key flag", args: []string{"worker", "--api-key", ""}, want: []string{"ANYSOLVER_API_KEY"}},
		{name: "API key of spaces", vars: map[string]string{"ANYSOLVER_API_KEY": "   "}, args: []string{"worker"},
			want: []string{"--api-key (ANYSOLVER_API_KEY) is only white space"}},
		{name: "API key with a newline", args: []string{"worker", "--api-key", "k-123\n"},
			want: []string{"--api-key (ANYSOLVER_API_KEY) starts or ends with white space"}},
		{name: "--http on every interface without credentials", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--http", "0.0.0.0:0"}, want: []string{"SOLVEQUEUE_HTTP_USER", "SOLVEQUEUE_HTTP_PASSWORD"}},
		{name: "--pprof on every interface", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--pprof", "0.0.0.0:6060"}, want: []string{"--pprof 0.0.0.0:6060 is not a loopback address"}},
		{name: "--http :0 without credentials", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--http", ":0"}, want: []string{"SOLVEQUEUE_HTTP_USER"}},
		{name: "--http from the environment, user without password",
			vars: map[string]string{"ANYSOLVER_API_KEY": "k", "SOLVEQUEUE_HTTP": "0.0.0.0:0", "SOLVEQUEUE_HTTP_USER": "ops"},
			args: []string{"worker"}, want: []string{"SOLVEQUEUE_HTTP_PASSWORD"}},
		{name: "concurrency 0", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--concurrency", "0"}, want: []string{"--concurrency must be at least 1, got 0"}},
		{name: "bad concurrency in the environment", vars: map[string]string{"ANYSOLVER_API_KEY": "k", "SOLVEQUEUE_CONCURRENCY": "lots"},
			args: []string{"worker"}, want: []string{"$SOLVEQUEUE_CONCURRENCY", "--concurrency"}},
		{name: "bad queue weight", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--queues", "critical=high"}, want: []string{"--queues", "critical=high"}},
		{name: "bad policy file", vars: map[string]string{"ANYSOLVER_API_KEY": "k", "SOLVEQUEUE_POLICY": "/nonexistent/policy.yaml"},
			args: []string{"worker"}, want: []string{"--policy", "/nonexistent/policy.yaml"}},
		{name: "bad keys file without --gateway", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--keys", "/nonexistent/keys.yaml"}, want: []string{"--keys", "/nonexistent/keys.yaml"}},
		{name: "bad log level", vars: map[string]string{"ANYSOLVER_API_KEY": "k"},
			args: []string{"worker", "--log-level", "loud"}, want: []string{"--log-level"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := cliRun(t, tt.vars, "", tt.args...)
			require.Equal(t, 2, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
			for _, w := range tt.want {
				require.Contains(t, res.stderr, w)
			}
		})
	}
}

// TestCLIEnvironmentPrecedence checks "flag > environment > default" on a command that needs
// no Redis: the demo refuses --jobs 0 whichever way it comes, and a flag wins over the variable.
func TestCLIEnvironmentPrecedence(t *testing.T) {
	t.Parallel()
	fromEnv := cliRun(t, map[string]string{"SOLVEQUEUE_JOBS": "0"}, "", "demo")
	require.Equal(t, 2, fromEnv.code)
	require.Contains(t, fromEnv.stderr, "--jobs must be at least 1, got 0")

	flagWins := cliRun(t, map[string]string{"SOLVEQUEUE_JOBS": "5"}, "", "demo", "--jobs", "-1")
	require.Equal(t, 2, flagWins.code)
	require.Contains(t, flagWins.stderr, "got -1")

	badEnv := cliRun(t, map[string]string{"SOLVEQUEUE_JOBS": "many"}, "", "demo")
	require.Equal(t, 2, badEnv.code)
	require.Contains(t, badEnv.stderr, `$SOLVEQUEUE_JOBS="many" is not a valid --jobs`)
}

// TestCLIDemo runs the demo in process: it must reach solved, failed and dead with few jobs.
func TestCLIDemo(t *testing.T) {
	t.Parallel()
	res := cliRun(t, nil, "", "demo", "--jobs", "40")
	require.Equal(t, 0, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
	require.Contains(t, res.stdout, "all 55 jobs ended", "40 on the mixed queue, 15 on the capped one")
	counts := map[string]int{}
	for _, state := range []string{"solved", "failed", "dead"} {
		m := regexp.MustCompile(`(?m)^` + state + `\s+(\d+)$`).FindStringSubmatch(res.stdout)
		require.NotNil(t, m, "the summary counts %s jobs:\n%s", state, res.stdout)
		n, err := strconv.Atoi(m[1])
		require.NoError(t, err)
		require.Positive(t, n, "%s jobs in the summary:\n%s", state, res.stdout)
		counts[state] = n
	}
	require.Equal(t, 55, counts["solved"]+counts["failed"]+counts["dead"])
	lines := strings.Split(res.stdout, "\n")
	require.Equal(t, "solvequeue demo: starting an in-process Redis (miniredis), the fake AnySolver and a worker…", lines[0],
		"the first line comes before anything slow")
	for i := 1; i < len(lines); i++ {
		if lines[i] != "" {
			require.NotEqual(t, lines[i-1], lines[i], "a line printed twice in a row:\n%s", res.stdout)
		}
	}
	require.Contains(t, res.stdout, "\nnext:\n  solvequeue policy ")
	// The money stories: a budget of 10 createTask calls per window for 15 jobs holds 5 of them,
	// and they end solved; the jobs naming a provider that is down fail over and are solved.
	m := regexp.MustCompile(`budget: queue demo-capped may make 10 createTask calls per 10s: (\d+) of its 15 jobs waited .*; 0 retries spent; 15 solved`).FindStringSubmatch(res.stdout)
	require.NotNil(t, m, res.stdout)
	waited, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	require.GreaterOrEqual(t, waited, 5, "10 createTask calls per window for 15 jobs: 5 or more waited for it to roll")
	m = regexp.MustCompile(`failover: (\d+) jobs named \[FlakyCo, SteadyCo\].*; (\d+) solved by SteadyCo`).FindStringSubmatch(res.stdout)
	require.NotNil(t, m, res.stdout)
	require.Equal(t, m[1], m[2], "every job that named the provider that is down was solved by the other")
	require.Regexp(t, `retries [1-9]\d* · throttles [1-9]\d* · createTask calls \d+`, res.stdout, "retries and throttles happen too")
	require.Contains(t, res.stdout, "DOMAIN_BANNED → failed")
	require.Contains(t, res.stdout, "UNKNOWN_PROVIDER_ERROR → dead")

	// The fake's createTask calls are told apart from what was charged, and they add up.
	calls := regexp.MustCompile(`the fake AnySolver saw (\d+) createTask calls; only a call that creates a task is charged:\n` +
		`  (\d+) created a task, charged \$[0-9.]+ in all.*\n  (\d+) were refused with an error code or an error page and created nothing: not charged\n`).
		FindStringSubmatch(res.stdout)
	require.NotNil(t, calls, res.stdout)
	n := make([]int, 3)
	for i := range n {
		n[i], _ = strconv.Atoi(calls[i+1])
	}
	require.Equal(t, n[0], n[1]+n[2], "calls = created + refused:\n%s", res.stdout)
	require.Positive(t, n[2], "the demo's mix refuses some calls")
}

// TestDemoNext: the hints name the command the way the user ran it (the hints themselves are
// internal/demo's TestDemoNext).
func TestDemoNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ arg0, want string }{
		{"/tmp/go-build4053408530/b001/exe/solvequeue", "go run ./cmd/solvequeue"},
		{"/root/.cache/tmp/go-build12/b001/exe/solvequeue", "go run ./cmd/solvequeue"},
		{"solvequeue", "solvequeue"},
		{"./solvequeue", "./solvequeue"},
		{"/usr/local/bin/solvequeue", "/usr/local/bin/solvequeue"},
		{"/srv/exe/solvequeue", "/srv/exe/solvequeue"},
		{"", "solvequeue"},
	} {
		require.Equal(t, tt.want, commandName(tt.arg0), tt.arg0)
	}
}

func mapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCLILogDurationsInSeconds: every command's logger writes a duration as seconds, a number,
// in text and in JSON.
func TestCLILogDurationsInSeconds(t *testing.T) {
	t.Parallel()
	for format, want := range map[string]string{"text": "took_s=6.284", "json": `"took_s":6.284`} {
		var buf strings.Builder
		log, err := (&logOptions{Level: "info", Format: format}).logger(&buf)
		require.NoError(t, err)
		log.Info("job ended", "took", 6284*time.Millisecond)
		require.Contains(t, buf.String(), want, format)
	}
}

// TestCLIWrongRedisPortSaysItOnce runs the built binary against a port nothing listens on: the
// one line of stderr is the clean message, with no raw go-redis dial lines before it.
func TestCLIWrongRedisPortSaysItOnce(t *testing.T) {
	t.Parallel()
	bin := solvequeueBinary(t)
	jobs := cliWriteFile(t, "jobs.jsonl", `{"task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}`+"\n")
	for _, args := range [][]string{
		{"status", "some-job"},
		{"enqueue", "--type", "ImageToTextTask", "--field", "body=iVBORw0KGgo="},
		{"batch", jobs},
		{"dlq", "list"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			// Nothing listens on port 1: every dial is refused at once.
			cmd := exec.Command(bin, append(args, "--redis", "redis://127.0.0.1:1/0")...)
			cmd.Env = []string{"HOME=" + t.TempDir()}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			require.Equal(t, 1, exit.ExitCode())
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			require.Len(t, lines, 1, "stderr:\n%s", stderr.String())
			require.True(t, strings.HasPrefix(lines[0], "solvequeue: no Redis at redis://127.0.0.1:1/0: "), lines[0])
		})
	}
}

// TestCLIBatchOutcomeUnreadable: a job deleted while the batch waits has no outcome to read;
// its line says state "unknown" and the batch exits 1, as its --help says.
func TestCLIBatchOutcomeUnreadable(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	jobs := cliWriteFile(t, "jobs.jsonl", `{"id":"doomed","queue":"nobody","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}`+"\n")
	outPath := filepath.Join(t.TempDir(), "outcomes.jsonl")
	done := make(chan cliResult, 1)
	go func() { done <- cliRun(t, map[string]string{"REDIS_URL": url}, "", "batch", jobs, "--out", outPath) }()

	inRedis := func() bool { // no worker serves "nobody", so a job submitted there waits
		_, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo("nobody", "doomed")
		return err == nil
	}
	// A job found missing while the batch waits (lost by a failover, say) is submitted again
	// under its ID, once; missing a second time, its outcome cannot be read.
	require.Eventually(t, inRedis, time.Minute, 20*time.Millisecond)
	require.NoError(t, asynq.NewInspectorFromRedisClient(rc).DeleteTask("nobody", "doomed"))
	require.Eventually(t, inRedis, time.Minute, 20*time.Millisecond, "the waiting batch submits a missing job again")
	require.NoError(t, asynq.NewInspectorFromRedisClient(rc).DeleteTask("nobody", "doomed"))

	res := <-done
	require.Equal(t, 1, res.code, res.stderr)
	require.Contains(t, res.stderr, "1 job missing from Redis while waiting")
	require.Contains(t, res.stderr, `the outcome of 1 job could not be read (state "unknown" in its line)`)
	out, err := os.ReadFile(outPath)
	require.NoError(t, err)
	require.Contains(t, string(out), `"id":"doomed"`)
	require.Contains(t, string(out), `"state":"unknown"`)
}
