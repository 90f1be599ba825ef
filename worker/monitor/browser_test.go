//go:build unix

package monitor

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/stretchr/testify/require"
)

// browserTimeout bounds one chromium run: a hang guard, as a run takes seconds alone and may
// take many more beside a race-detector build on two shared cores.
const browserTimeout = 3 * time.Minute

// TestMonitoringInBrowser renders asynqmon's pending-tasks page in headless Chromium, as an
// operator would see it, and checks that the rendered page shows the queue and redacted proxy
// passwords but not the passwords. A screenshot is kept in $SOLVEQUEUE_TEST_ARTIFACTS.
func TestMonitoringInBrowser(t *testing.T) {
	t.Parallel()
	browser := findBrowser(t)
	b := setup(t)
	addr, stop, err := ListenAndServe(t.Context(), Config{Addr: "127.0.0.1:0", Redis: b.rc, Registry: b.reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(context.Background()) })

	// asynqmon is a React SPA: /queues/:qname?status=pending is the queue page's pending tab
	// (see ui/src/paths.ts in its module).
	page := "http://" + addr + "/monitoring/queues/default?status=pending"

	dom := runBrowser(t, browser, "--dump-dom", page)
	require.Contains(t, dom, "default")
	require.Contains(t, dom, jobwire.TaskType)
	require.Contains(t, dom, redact.Marker)
	for _, s := range []string{proxyPassword, proxyURLPass, otherTaskPass} {
		require.NotContains(t, dom, s)
	}

	dir := artifactDir(t)
	shot := filepath.Join(dir, "monitoring.png")
	runBrowser(t, browser, "--screenshot="+shot, "--window-size=1280,900", page)
	png, err := os.ReadFile(shot)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "%s is not a PNG", shot)
	t.Logf("screenshot of the pending tasks page: %s", shot)
}

// findBrowser returns chromium's path; without it the test is skipped, or fails when CI is set.
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "chromium not found: install it (apt-get install -y chromium) to check the web UI in a browser"
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg + "; CI is set, so this test fails instead of skipping")
	}
	t.Skip(msg + "; skipping")
	return ""
}

// artifactDir is $SOLVEQUEUE_TEST_ARTIFACTS (created if need be) or a temporary directory.
func artifactDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("SOLVEQUEUE_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// runBrowser runs headless chromium with args after the common flags, within browserTimeout,
// and returns its stdout. Chromium's helper processes share its process group, which is
// killed when the run ends, however it ends.
func runBrowser(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), browserTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-dev-shm-usage", "--user-data-dir=" + t.TempDir(), "--virtual-time-budget=8000",
	}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Start()
	require.NoError(t, err)
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("chromium %s: %v (timeout %s)\nstderr:\n%s", strings.Join(args, " "), err, browserTimeout, tail(stderr.String(), 4000))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
