//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// TestBatchPeakMemory runs `solvequeue batch` on a large file, from a path and from stdin, and
// reads the process's peak resident memory from the kernel (getrusage's ru_maxrss): less than
// the file's size, runtime and all (the review saw 1.27 GB, 14 times the size, for a 90 MB
// file). TestBatchStreamsInBoundedMemory in package enqueue measures the heap itself.
func TestBatchPeakMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2 x 64 MiB into a Redis")
	}
	t.Parallel()
	const jobs, bodyBytes = 256, 256 << 10
	srv := enqueuetest.Redis(t)
	path := filepath.Join(t.TempDir(), "big.jsonl")
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriter(f)
	body := strings.Repeat("QUJD", bodyBytes/4)
	for i := range jobs {
		fmt.Fprintf(w, `{"id":"big-%d","task":{"type":"ImageToTextTask","body":"%s"}}`+"\n", i, body)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
	st, err := os.Stat(path)
	require.NoError(t, err)

	for _, from := range []string{"path", "stdin"} {
		t.Run(from, func(t *testing.T) {
			rc, err := enqueue.OpenRedis(context.Background(), srv.URL(), 0)
			require.NoError(t, err)
			defer rc.Close()
			require.NoError(t, rc.FlushAll(context.Background()).Err())

			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			args := []string{"batch", path, "--no-wait"}
			cmd := exec.CommandContext(ctx, solvequeueBinary(t), args...)
			if from == "stdin" {
				in, err := os.Open(path)
				require.NoError(t, err)
				defer in.Close()
				cmd.Args[2], cmd.Stdin = "-", in
			}
			cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + t.TempDir(), "REDIS_URL=" + srv.URL()}
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "%s", tail(string(out), 20))
			require.Contains(t, string(out), fmt.Sprintf("submitted %d of %d jobs", jobs, jobs))
			peakKB := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss
			ratio := float64(peakKB<<10) / float64(st.Size())
			t.Logf("batch of %d MiB from %s: peak RSS %d MiB (%.2f of the file)", st.Size()>>20, from, peakKB>>10, ratio)
			require.Less(t, ratio, 1.0, "the batch's memory grows with the file")
			n, err := rc.DBSize(context.Background()).Result()
			require.NoError(t, err)
			require.Greater(t, n, int64(jobs), "every job went in, with its body")
		})
	}
}
