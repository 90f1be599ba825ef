package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// TestWorkerProcessSolves runs the built binary as a worker and the CLI as a producer.
func TestWorkerProcessSolves(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	s.startWorker(t, nil, "--poll-interval", "200ms")
	stdout, stderr, code := runCLI(t, s.env(), nil, "enqueue", "--id", "smoke-1", "--type", "RecaptchaV2TaskProxyless",
		"--website-url", "https://shop.example", "--website-key", "sq:solve=500ms", "--wait", "--timeout", "3m")
	require.Equal(t, 0, code, "stderr: %s", stderr)
	require.Contains(t, stdout, `"state":"solved"`)
	require.Equal(t, 1, s.fake.Creates("sq:solve=500ms"))
	out := s.waitAll(t, []string{"smoke-1"}, hangGuard)
	require.Equal(t, enqueue.StateSolved, out["smoke-1"].State)
}
