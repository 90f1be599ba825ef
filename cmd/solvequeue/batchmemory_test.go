//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// TestBatchPeakMemory runs `solvequeue batch` on a large file, from a path and from stdin, and
// reads the process's peak resident memory from the kernel (VmHWM, sampled: see watchPeakRSS): less than
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
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			require.NoError(t, cmd.Start())
			peakKB := watchPeakRSS(cmd.Process.Pid)
			err = cmd.Wait()
			require.NoError(t, err, "%s", tail(out.String(), 20))
			require.Contains(t, out.String(), fmt.Sprintf("submitted %d of %d jobs", jobs, jobs))
			kb := peakKB()
			ratio := float64(kb<<10) / float64(st.Size())
			t.Logf("batch of %d MiB from %s: peak RSS %d MiB (%.2f of the file)", st.Size()>>20, from, kb>>10, ratio)
			require.Less(t, ratio, 1.0, "the batch's memory grows with the file")
			n, err := rc.DBSize(context.Background()).Result()
			require.NoError(t, err)
			require.Greater(t, n, int64(jobs), "every job went in, with its body")
		})
	}
}

// watchPeakRSS samples the process's resident high-water mark (VmHWM in /proc/PID/status) every
// few milliseconds until it exits, and returns a func that stops and gives the last sample, in
// KiB. Not getrusage's ru_maxrss: a child started by os/exec shares the test process's memory
// until its exec (vfork), and the kernel carries that high-water mark, the test process's
// size, into the child's ru_maxrss.
func watchPeakRSS(pid int) func() int64 {
	var (
		mu   sync.Mutex
		peak int64
	)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if kb, ok := vmHWM(pid); ok {
				mu.Lock()
				peak = max(peak, kb)
				mu.Unlock()
			}
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() int64 {
		close(stop)
		<-done
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// vmHWM reads VmHWM (KiB) from /proc/PID/status.
func vmHWM(pid int) (int64, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(v), " kB"), &kb); err == nil {
				return kb, true
			}
		}
	}
	return 0, false
}
