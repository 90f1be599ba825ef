//go:build unix

// Package browsertest runs headless Chromium for tests that must see what a real browser does
// (the web UI's rendering, what a web page can make a browser send). A test without Chromium is
// skipped, or fails when CI is set.
//
// It is imported by tests only: nothing that imports testing is linked into the binary.
package browsertest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Timeout bounds one Chromium run: a hang guard, as a run takes seconds alone and may take many
// more beside a race-detector build on two shared cores.
const Timeout = 3 * time.Minute

// Find returns Chromium's path; without it the test is skipped, or fails when CI is set.
func Find(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	const msg = "chromium not found: install it (apt-get install -y chromium) to run this test in a browser"
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg + "; CI is set, so this test fails instead of skipping")
	}
	t.Skip(msg + "; skipping")
	return ""
}

// Run runs headless Chromium with args after the common flags (a fresh profile, no background
// traffic, 8 s of virtual time for the page's scripts and requests), within Timeout, and
// returns its stdout. Chromium's helper processes share its process group, which is killed when
// the run ends, however it ends.
func Run(t *testing.T, browser string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), Timeout)
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
	if err := cmd.Start(); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	defer func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("chromium %s: %v (timeout %s)\nstderr:\n%s", strings.Join(args, " "), err, Timeout, tail(stderr.String(), 4000))
	}
	return stdout.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}
