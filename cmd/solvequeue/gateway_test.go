package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// nodeE2EDir holds the Node side of the gateway's end-to-end tests: a package.json and
// package-lock.json pinning @zennolab_com/capmonstercloud-client and @2captcha/captcha-solver,
// e2e.js and e2e-2captcha.js.
const nodeE2EDir = "../../enqueue/gateway/testdata/node"

// requireNodeModules finds node and npm and installs the Node side's packages from its lock
// file when they are not there yet. Without node or npm the test is skipped, or fails when CI
// is set.
func requireNodeModules(t *testing.T) string {
	t.Helper()
	missing := func(msg string) {
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg + "; CI is set, so this test fails instead of skipping")
		}
		t.Skip(msg + "; skipping")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("node not found: install Node.js (apt-get install nodejs npm)")
	}
	dir, err := filepath.Abs(nodeE2EDir)
	require.NoError(t, err)
	installed := true
	for _, pkg := range []string{"@zennolab_com/capmonstercloud-client", "@2captcha/captcha-solver"} {
		if _, err := os.Stat(filepath.Join(dir, "node_modules", pkg, "package.json")); err != nil {
			installed = false
		}
	}
	if installed {
		return node
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		missing("npm not found: install it (apt-get install npm) to fetch the client library")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, npm, "ci", "--no-audit", "--no-fund")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		missing("npm ci in " + dir + " failed: " + err.Error() + "\n" + string(out))
	}
	return node
}

// freeLoopbackAddr returns a loopback address nobody listens on at the moment.
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// nodeSaw is what e2e.js printed: what the client library returned for each scenario.
type nodeSaw struct {
	Solved, Permanent, Transient, Image struct {
		Solution map[string]any `json:"solution"`
		Error    string         `json:"error"`
		Thrown   string         `json:"thrown"`
	}
	Balance struct {
		ErrorID int      `json:"errorId"`
		Balance *float64 `json:"balance"`
		Thrown  string   `json:"thrown"`
	}
	WrongKey struct {
		Thrown    string `json:"thrown"`
		ErrorType string `json:"errorType"`
	}
}

// TestGatewayThroughANodeClient runs `solvequeue worker --gateway` as a process, with a keys
// file, against the fake AnySolver, and drives it with @zennolab_com/capmonstercloud-client from
// npm, used as any scraper uses it (only serviceUrl and clientKey changed): a token solved, a
// permanent error, a transient error the queue's retries hide, an image task, getBalance, and a
// key the gateway does not know.
func TestGatewayThroughANodeClient(t *testing.T) {
	t.Parallel()
	const gatewayKey = "gk-e2e-node-6c1f0a9b3d7e2f48"
	s, p, printed := runNodeClient(t, "e2e.js", "node-scrapers", gatewayKey)
	var saw nodeSaw
	require.NoError(t, json.Unmarshal([]byte(printed), &saw), "e2e.js printed: %s", printed)
	t.Logf("the client saw: %s", printed)

	require.Empty(t, saw.Solved.Error+saw.Solved.Thrown)
	require.NotEmpty(t, saw.Solved.Solution["gRecaptchaResponse"], "a token, whole")
	require.Equal(t, 1, s.fake.Creates("e2e-plain-site-key"))

	require.Nil(t, saw.Permanent.Solution)
	require.Equal(t, "DOMAIN_NOT_ALLOWED", saw.Permanent.Error,
		"a permanent error reaches the client as an error of its own list (ERROR_DOMAIN_NOT_ALLOWED), not Unknown")
	require.Equal(t, 1, s.fake.Creates("sq:id=e2e-permanent;create=DOMAIN_BANNED*9"), "and is paid (tried) once")

	require.Empty(t, saw.Transient.Error+saw.Transient.Thrown, "two SERVICE_UNAVAILABLE answers are hidden by the queue's retries")
	require.NotEmpty(t, saw.Transient.Solution["gRecaptchaResponse"])
	require.Equal(t, 3, s.fake.Creates("sq:id=e2e-transient;create=SERVICE_UNAVAILABLE*2"))

	require.Empty(t, saw.Image.Error+saw.Image.Thrown)
	require.NotEmpty(t, saw.Image.Solution["text"], "an image task, answered at createTask by AnySolver, polled by the client")

	require.Empty(t, saw.Balance.Thrown)
	require.NotNil(t, saw.Balance.Balance)
	require.Equal(t, 77.5, *saw.Balance.Balance, "getBalance answers what the worker read from AnySolver")

	require.Contains(t, saw.WrongKey.Thrown, "KEY_DOES_NOT_EXIST", "a key the gateway does not know")

	// The jobs went to the key's queue under its name; the key itself is nowhere in Redis or the logs.
	tasks, err := s.inspector.ListCompletedTasks("scrapers")
	require.NoError(t, err)
	require.Len(t, tasks, 4)
	for _, task := range tasks {
		pl, err := jobwire.DecodePayload(task.Payload)
		require.NoError(t, err)
		require.Equal(t, "node-scrapers", pl.KeyName)
		require.Positive(t, pl.GatewayTaskID)
		require.NotContains(t, string(task.Payload), gatewayKey)
	}
	require.NotContains(t, p.logs.String(), gatewayKey)
	out, err := s.client.StatusIn(context.Background(), "scrapers", findJob(t, s, "DOMAIN_BANNED"))
	require.NoError(t, err)
	require.Equal(t, enqueue.StateFailed, out.State)
	require.Equal(t, "DOMAIN_BANNED", out.Error.ErrorCode)
}

// findJob returns the ID of the job in queue scrapers whose websiteKey contains what.
func findJob(t *testing.T, s *stack, what string) string {
	t.Helper()
	tasks, err := s.inspector.ListCompletedTasks("scrapers")
	require.NoError(t, err)
	for _, task := range tasks {
		if strings.Contains(string(task.Payload), what) {
			return task.ID
		}
	}
	t.Fatalf("no job with %q", what)
	return ""
}

// TestGatewayCommandRefuses: what the gateway command refuses at start, each with exit status 2
// and a message that says what to do, before anything reaches Redis.
func TestGatewayCommandRefuses(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	badKeys := cliWriteFile(t, "keys.yaml", "keys:\n  - name: a\n    key: short\n    queue: q\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no keys on every interface", []string{"gateway", "--addr", ":0"}, "give --keys FILE"},
		{"no keys on a worker's gateway either", []string{"worker", "--api-key", "k", "--gateway", "0.0.0.0:0"}, "give --keys FILE"},
		{"a bad keys file names its line", []string{"gateway", "--keys", badKeys}, badKeys + ": line 3: "},
		{"a missing keys file", []string{"gateway", "--keys", badKeys + ".missing"}, "--keys"},
		{"a tiny --max-body", []string{"gateway", "--max-body", "10"}, "--max-body must be at least 1024"},
		{"metrics open to the network", []string{"gateway", "--http", ":0"}, "SOLVEQUEUE_HTTP_USER"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cliRun(t, map[string]string{"REDIS_URL": url}, "", tt.args...)
			require.Equal(t, 2, res.code, "stderr: %s", res.stderr)
			require.Contains(t, res.stderr, tt.want)
			require.NotContains(t, res.stderr, "short\n")
		})
	}
	cliRequireEmpty(t, rc)
}

// runNodeClient runs `solvequeue worker --gateway` as a process on a new stack (the fake's
// balance 77.5; a task that is not answered at once solves in 500 ms), with a keys file giving
// gatewayKey, named keyName, the queue "scrapers", and a fast retry policy; then runs the npm
// client script (in nodeE2EDir) against the gateway and returns the stack, the worker and what
// the script printed.
func runNodeClient(t *testing.T, script, keyName, gatewayKey string) (*stack, *proc, string) {
	t.Helper()
	node := requireNodeModules(t)
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{Balance: 77.5,
		Script: anysolvertest.DirectiveScript(func(t anysolvertest.Task) anysolvertest.Behavior {
			b := anysolvertest.DefaultBehavior(t)
			if !b.Immediate {
				b.SolveTime = 500 * time.Millisecond
			}
			return b
		})})
	keys := cliWriteFile(t, "keys.yaml", "keys:\n  - name: "+keyName+"\n    key: "+gatewayKey+"\n    queue: scrapers\n")
	policy := cliWriteFile(t, "policy.yaml", "retry:\n  maxRetries: 5\n  baseDelay: 100ms\n  maxDelay: 500ms\n")
	addr := freeLoopbackAddr(t)
	p := s.startWorker(t, nil, "--queues", "scrapers=1", "--policy", policy, "--poll-interval", "200ms",
		"--gateway", addr, "--keys", keys)
	require.True(t, p.waitForLog("serving AnySolver's API", 30*time.Second), "the gateway did not start:\n%s", p.logs.String())

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = nodeE2EDir
	cmd.Env = append(os.Environ(), "GATEWAY_URL=http://"+addr, "GATEWAY_KEY="+gatewayKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "%s: %s", script, stderr.String())
	return s, p, stdout.String()
}
