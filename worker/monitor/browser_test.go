//go:build unix

package monitor

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/solvequeue/solvequeue/internal/browsertest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/stretchr/testify/require"
)

// TestMonitoringInBrowser renders asynqmon's pending-tasks page in headless Chromium, as an
// operator would see it, and checks that the rendered page shows the queue and redacted proxy
// passwords but not the passwords. A screenshot is kept in $SOLVEQUEUE_TEST_ARTIFACTS.
func TestMonitoringInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Find(t)
	b := setup(t)
	addr, stop, err := ListenAndServe(t.Context(), Config{Addr: "127.0.0.1:0", Redis: b.rc, Registry: b.reg})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(context.Background()) })

	// asynqmon is a React SPA: /queues/:qname?status=pending is the queue page's pending tab
	// (see ui/src/paths.ts in its module).
	page := "http://" + addr + "/monitoring/queues/default?status=pending"

	dom := browsertest.Run(t, browser, "--dump-dom", page)
	require.Contains(t, dom, "default")
	require.Contains(t, dom, jobwire.TaskType)
	require.Contains(t, dom, redact.Marker)
	for _, s := range []string{proxyPassword, proxyURLPass, otherTaskPass} {
		require.NotContains(t, dom, s)
	}

	dir := artifactDir(t)
	shot := filepath.Join(dir, "monitoring.png")
	browsertest.Run(t, browser, "--screenshot="+shot, "--window-size=1280,900", page)
	png, err := os.ReadFile(shot)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "%s is not a PNG", shot)
	t.Logf("screenshot of the pending tasks page: %s", shot)
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
