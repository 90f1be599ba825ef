package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// This file is the harness of the process-level tests: the solvequeue binary built once and
// run as a subprocess (so crashes and signals are real), a real redis-server, and the fake
// AnySolver served over loopback HTTP from the test process (so the test can script it and
// count its calls).

var binary struct {
	once sync.Once
	path string
	err  error
}

// solvequeueBinary builds ./cmd/solvequeue once per test process.
func solvequeueBinary(t testing.TB) string {
	t.Helper()
	binary.once.Do(func() {
		dir, err := os.MkdirTemp("", "solvequeue-bin-")
		if err != nil {
			binary.err = err
			return
		}
		binary.path = filepath.Join(dir, "solvequeue")
		out, err := exec.Command("go", "build", "-o", binary.path, ".").CombinedOutput()
		if err != nil {
			binary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	require.NoError(t, binary.err)
	return binary.path
}

// proc is a running solvequeue subprocess.
type proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	logs *enqueuetest.LogBuffer
	done chan struct{}
	err  error
}

// startProc runs the binary with args and env (added to a minimal environment: no
// inherited REDIS_URL or key), stopping it at the end of the test.
func startProc(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(solvequeueBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env...)
	p := &proc{t: t, cmd: cmd, logs: &enqueuetest.LogBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	require.NoError(t, cmd.Start())
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("output of %s:\n%s", strings.Join(args, " "), tail(p.logs.String(), 60))
		}
	})
	return p
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// signal sends sig and waits (bounded) for the process to exit.
func (p *proc) signal(sig syscall.Signal, within time.Duration) error {
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
		return p.err
	case <-time.After(within):
		return fmt.Errorf("process did not exit within %s of %s", within, sig)
	}
}

// waitForLog waits until the output contains s.
func (p *proc) waitForLog(s string, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if strings.Contains(p.logs.String(), s) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

// runCLI runs the binary to completion and returns stdout, stderr and the exit code.
func runCLI(t testing.TB, env []string, stdin io.Reader, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
	defer cancel()
	cmd := exec.CommandContext(ctx, solvequeueBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &stdout, &stderr, stdin
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return stdout.String(), stderr.String(), code
}

// stack is one test's world: a real redis-server, the fake AnySolver on loopback, and a
// producer client, an operator's client and an asynq inspector on it.
type stack struct {
	redis     *enqueuetest.RedisServer
	fake      *anysolvertest.Server
	fakeURL   string
	client    *enqueue.Client
	admin     *admin.Client
	inspector *asynq.Inspector
	apiKey    string
}

const stackAPIKey = "sk-proc-test-93b1e6f0c2d84a57"

// hangGuard bounds a wait for an event (a log line, a count, an exit) only so that a hung test
// ends: the tests assert that something happens, never how fast, because CI runs them with the
// race detector on two shared cores, where a second can stretch to many.
const hangGuard = 3 * time.Minute

func newStack(t *testing.T, redisOpts enqueuetest.RedisOptions, fakeOpts anysolvertest.Options) *stack {
	t.Helper()
	s := &stack{apiKey: stackAPIKey}
	s.redis = enqueuetest.Redis(t, redisOpts)
	if fakeOpts.APIKeys == nil {
		fakeOpts.APIKeys = []string{stackAPIKey}
	}
	if fakeOpts.Script == nil {
		fakeOpts.Script = anysolvertest.DirectiveScript(nil)
	}
	fake, srv := anysolvertest.NewServer(fakeOpts)
	t.Cleanup(srv.Close)
	t.Cleanup(fake.Close)
	s.fake, s.fakeURL = fake, srv.URL
	rc, err := redisconn.Open(context.Background(), s.redis.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	s.client, err = enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	s.admin, err = admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	s.inspector = asynq.NewInspectorFromRedisClient(rc)
	return s
}

// env is the environment of a worker of this stack; extra entries override.
func (s *stack) env(extra ...string) []string {
	return append([]string{"REDIS_URL=" + s.redis.URL(), "ANYSOLVER_URL=" + s.fakeURL,
		"ANYSOLVER_API_KEY=" + s.apiKey, "SOLVEQUEUE_LOG_FORMAT=json"}, extra...)
}

// startWorker runs `solvequeue worker` on the stack and waits until it serves.
func (s *stack) startWorker(t *testing.T, extraEnv []string, args ...string) *proc {
	t.Helper()
	p := startProc(t, s.env(extraEnv...), append([]string{"worker"}, args...)...)
	require.True(t, p.waitForLog(`"worker started"`, hangGuard), "worker did not start:\n%s", p.logs.String())
	return p
}

// waitAll waits for every job and returns the outcomes by id.
func (s *stack) waitAll(t *testing.T, ids []string, within time.Duration) map[string]enqueue.Outcome {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	refs := make([]enqueue.JobRef, len(ids))
	for i, id := range ids {
		refs[i] = enqueue.JobRef{ID: id, Queue: enqueue.DefaultQueue}
	}
	out := map[string]enqueue.Outcome{}
	err := s.client.WaitMany(ctx, refs, 16, func(ref enqueue.JobRef, o enqueue.Outcome, err error) {
		require.NoError(t, err)
		out[ref.ID] = o
	})
	require.NoError(t, err, "only %d of %d jobs ended", len(out), len(ids))
	return out
}

// scanLines returns the lines of s that contain all of the words.
func scanLines(s string, words ...string) []string {
	var hits []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		ok := true
		for _, w := range words {
			if !strings.Contains(sc.Text(), w) {
				ok = false
				break
			}
		}
		if ok {
			hits = append(hits, sc.Text())
		}
	}
	return hits
}
