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

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// TestBatchPeakMemory runs `solvequeue batch` on a small and a large file, from a path and from
// stdin, and reads each process's peak resident memory from the kernel (getrusage's ru_maxrss).
// The small run is the baseline of the same binary, runtime and race detector included: the
// large file is 60 MiB larger, and the peak may grow by at most a quarter of that (a batch that
// held its file would grow by all of it and more: the review saw 1.27 GB, 14 times the size, for
// a 90 MB file). TestBatchStreamsInBoundedMemory in package enqueue measures the heap itself.
func TestBatchPeakMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB into a Redis, twice")
	}
	t.Parallel()
	const bodyBytes = 256 << 10
	srv := enqueuetest.Redis(t)
	dir := t.TempDir()
	write := func(name string, jobs int) (string, int64) {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		require.NoError(t, err)
		w := bufio.NewWriter(f)
		body := strings.Repeat("QUJD", bodyBytes/4)
		for i := range jobs {
			fmt.Fprintf(w, `{"id":"%s-%d","task":{"type":"ImageToTextTask","body":"%s"}}`+"\n", name, i, body)
		}
		require.NoError(t, w.Flush())
		require.NoError(t, f.Close())
		st, err := os.Stat(path)
		require.NoError(t, err)
		return path, st.Size()
	}
	smallPath, smallSize := write("small", 16)
	bigPath, bigSize := write("big", 256)

	peak := func(t *testing.T, from, path string, jobs int) int64 {
		rc, err := redisconn.Open(context.Background(), srv.URL(), 0)
		require.NoError(t, err)
		defer rc.Close()
		require.NoError(t, rc.FlushAll(context.Background()).Err())
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, solvequeueBinary(t), "batch", path, "--no-wait")
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
		n, err := rc.DBSize(context.Background()).Result()
		require.NoError(t, err)
		require.Greater(t, n, int64(jobs), "every job went in, with its body")
		return cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10
	}
	for _, from := range []string{"path", "stdin"} {
		t.Run(from, func(t *testing.T) {
			small := peak(t, from, smallPath, 16)
			big := peak(t, from, bigPath, 256)
			growth := float64(big-small) / float64(bigSize-smallSize)
			t.Logf("batch from %s: peak RSS %d MiB for %d MiB, %d MiB for %d MiB: it grew by %.2f of the file's growth",
				from, small>>20, smallSize>>20, big>>20, bigSize>>20, growth)
			require.Less(t, growth, 0.25, "the batch's memory grows with the file")
		})
	}
}
