package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// lineStream generates a batch of n image jobs of bodyBytes each, one line at a time, without
// holding the batch: a file too large to hold, as a reader.
type lineStream struct {
	n, bodyBytes int
	next         int
	buf          []byte
}

func (s *lineStream) Read(p []byte) (int, error) {
	for len(s.buf) == 0 {
		if s.next == s.n {
			return 0, io.EOF
		}
		s.buf = fmt.Appendf(nil, `{"id":"big-%d","task":{"type":"ImageToTextTask","body":"%s"}}`+"\n",
			s.next, strings.Repeat("QUJD", s.bodyBytes/4))
		s.next++
	}
	n := copy(p, s.buf)
	s.buf = s.buf[n:]
	return n, nil
}

func (s *lineStream) size() int {
	return s.n * (len(`{"id":"big-000","task":{"type":"ImageToTextTask","body":""}}`+"\n") + s.bodyBytes)
}

// heapPeak samples the live heap (after a collection) at each call and keeps the largest
// growth over the start: what is held at that moment, garbage aside, so that the figure does
// not depend on when the collector happens to run.
type heapPeak struct {
	mu        sync.Mutex // sample is called from the submitting goroutines too
	base, max uint64
}

func newHeapPeak() *heapPeak {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return &heapPeak{base: m.HeapAlloc}
}

func (h *heapPeak) sample() {
	h.mu.Lock()
	defer h.mu.Unlock()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	if m.HeapAlloc > h.base && m.HeapAlloc-h.base > h.max {
		h.max = m.HeapAlloc - h.base
	}
}

// TestBatchStreamsInBoundedMemory is the review's case (a 90 MB batch took 1.27 GB): a batch is
// checked and then submitted a line at a time, and the live heap grows by a fraction of its
// size, measured at every line read and every job submitted, not by a clock. Not parallel: the heap
// is the process's.
func TestBatchStreamsInBoundedMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 64 MiB into a Redis")
	}
	const jobs, bodyBytes = 256, 256 << 10 // 64 MiB of image jobs
	srv := enqueuetest.Redis(t)
	rc, err := redisconn.Open(context.Background(), srv.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	ctx := context.Background()

	// First pass: check every line.
	peak := newHeapPeak()
	check := &lineStream{n: jobs, bodyBytes: bodyBytes}
	count := 0
	require.NoError(t, enqueue.ScanJobs(check, func(enqueue.LineJob) error { count++; peak.sample(); return nil }))
	require.Equal(t, jobs, count)
	checkPeak := peak.max

	// Second pass: submit as the lines are read again.
	submit := &lineStream{n: jobs, bodyBytes: bodyBytes}
	seq := func(yield func(int, enqueue.Job) bool) {
		_ = enqueue.ScanJobs(submit, func(l enqueue.LineJob) error {
			peak.sample()
			if !yield(l.Line, l.Job) {
				return errors.New("stop")
			}
			return nil
		})
	}
	submitted := 0
	require.NoError(t, client.SubmitSeq(ctx, seq, 0, func(r enqueue.SubmitResult) {
		require.NoError(t, r.Err)
		submitted++
		peak.sample()
	}))
	require.Equal(t, jobs, submitted)
	size := check.size()
	t.Logf("batch of %d MiB: heap grew by at most %.1f MiB checking it, %.1f MiB submitting it (%.2f of its size)",
		size>>20, float64(checkPeak)/(1<<20), float64(peak.max)/(1<<20), float64(peak.max)/float64(size))
	require.Less(t, float64(peak.max), 0.25*float64(size), "the heap grows with the batch")

	// What went in is what was read.
	info, err := asynq.NewInspectorFromRedisClient(rc).GetQueueInfo(enqueue.DefaultQueue)
	require.NoError(t, err)
	require.Equal(t, jobs, info.Pending)

	// The measure sees a batch held whole: ReadJobs, which returns every job, grows by more.
	held := newHeapPeak()
	all, err := enqueue.ReadJobs(&lineStream{n: jobs, bodyBytes: bodyBytes})
	require.NoError(t, err)
	held.sample()
	require.Len(t, all, jobs)
	t.Logf("ReadJobs, holding the batch: %.1f MiB", float64(held.max)/(1<<20))
	require.Greater(t, float64(held.max), 0.9*float64(size))
}

func TestScanJobsBoundsTheErrorList(t *testing.T) {
	t.Parallel()
	file := strings.Repeat(`{"task":{}}`+"\n", enqueue.MaxBatchErrors+5) + goodLine + "\n"
	seen := 0
	err := enqueue.ScanJobs(strings.NewReader(file), func(enqueue.LineJob) error { seen++; return nil })
	var batchErr *enqueue.BatchError
	require.ErrorAs(t, err, &batchErr)
	require.Len(t, batchErr.Lines, enqueue.MaxBatchErrors)
	require.Equal(t, 5, batchErr.More)
	require.Contains(t, err.Error(), fmt.Sprintf("%d bad line(s), nothing submitted", enqueue.MaxBatchErrors+5))
	require.Equal(t, 1, seen, "the good lines of a bad file are seen: checking it is the caller's first pass")

	stop := errors.New("enough")
	err = enqueue.ScanJobs(strings.NewReader(goodLine+"\n"+goodLine+"\n"), func(enqueue.LineJob) error { return stop })
	require.ErrorIs(t, err, stop)
}

func TestSubmitSeqReportsBadJobsAndKeys(t *testing.T) {
	t.Parallel()
	c, _, _ := miniClient(t)
	jobs := map[int]enqueue.Job{10: recaptchaJob("seq-10"), 20: {ID: "seq-20", Task: map[string]any{}}, 30: recaptchaJob("seq-30")}
	got := map[int]error{}
	require.NoError(t, c.SubmitSeq(context.Background(), func(yield func(int, enqueue.Job) bool) {
		for _, k := range []int{10, 20, 30} {
			if !yield(k, jobs[k]) {
				return
			}
		}
	}, 2, func(r enqueue.SubmitResult) { got[r.Index] = r.Err }))
	require.Len(t, got, 3)
	require.NoError(t, got[10])
	require.NoError(t, got[30])
	var verr *enqueue.ValidationError
	require.ErrorAs(t, got[20], &verr)
}
