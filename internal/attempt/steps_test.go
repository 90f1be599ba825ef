package attempt

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStepsQueueBeyondTheBound: with one slot, a step run while another holds it is queued and
// its run returns at once, leaving no goroutine waiting; the goroutine of the running step runs
// the queued ones after its own, oldest first, and then frees the slot for the next run.
func TestStepsQueueBeyondTheBound(t *testing.T) {
	t.Parallel()
	s := newSteps(1)
	var (
		mu    sync.Mutex
		order []string
	)
	note := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, what)
	}
	inFirst, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		s.run(func() {
			close(inFirst)
			<-release
			note("first")
		})
	}()
	<-inFirst
	s.run(func() { note("second") }) // returns at once: queued
	s.run(func() { note("third") })
	require.Equal(t, 2, s.waitingCount(), "both wait in the queue, not on goroutines")
	mu.Lock()
	require.Empty(t, order, "no queued step ran while the slot was taken")
	mu.Unlock()

	close(release)
	select {
	case <-firstDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the first step's goroutine did not finish the queue")
	}
	require.Equal(t, []string{"first", "second", "third"}, order, "the queued steps ran after the first, oldest first")
	require.Zero(t, s.waitingCount())

	ran := false
	s.run(func() { ran = true })
	require.True(t, ran, "the slot is free again: a step runs at once, on its caller's goroutine")
}

// TestStepsUnbounded: with no bound every step runs at once on its caller's goroutine.
func TestStepsUnbounded(t *testing.T) {
	t.Parallel()
	s := newSteps(0)
	n := 0
	s.run(func() {
		s.run(func() { n++ })
		n++
	})
	require.Equal(t, 2, n)
}

// waitingCount is how many steps wait for a slot.
func (s *steps) waitingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}

// TestStepsBoundAdapts: the bound starts at startStepLimit (or the connection count, if lower);
// every lookEvery ends it shrinks by a quarter while the CPU signal says busy (not below
// minStepLimit, nor above the connection count), grows while steps are queued and the CPU is
// not short, up to the connection count, and stays where it is when nothing is queued.
func TestStepsBoundAdapts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		conns     int
		busy      []bool // the signal at each look, in order
		queued    bool   // steps wait at every look
		wantStart int
		want      []int // the bound after each look
	}{
		{name: "starts low, grows while queued and idle", conns: 512, busy: []bool{false, false, false, false, false, false, false},
			queued: true, wantStart: 32, want: []int{36, 40, 44, 48, 52, 56, 60}},
		{name: "nothing queued: stays", conns: 512, busy: []bool{false, false}, wantStart: 32, want: []int{32, 32}},
		{name: "busy: shrinks by a quarter to the floor", conns: 512, busy: []bool{true, true, true, true}, queued: true,
			wantStart: 32, want: []int{24, 18, 16, 16}},
		{name: "capped by the connections", conns: 34, busy: []bool{false, false}, queued: true, wantStart: 32, want: []int{34, 34}},
		{name: "few connections: never above them", conns: 4, busy: []bool{true, false}, queued: true, wantStart: 4, want: []int{4, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			look := 0
			s := newStepsWith(tt.conns, func() bool { b := tt.busy[look]; look++; return b })
			require.Equal(t, tt.wantStart, s.limit)
			for i, want := range tt.want {
				s.mu.Lock()
				s.queue, s.head = nil, 0
				if tt.queued {
					s.queue = []func(){func() {}}
				}
				s.adapt()
				got := s.limit
				s.mu.Unlock()
				require.Equal(t, want, got, "after look %d", i+1)
			}
		})
	}
}

// TestStepsLargeBoundGrowsBySixteenth: from 256 the bound grows by 16 a look, and stops at the
// connection count.
func TestStepsLargeBoundGrowsBySixteenth(t *testing.T) {
	t.Parallel()
	s := newStepsWith(280, func() bool { return false })
	s.limit = 256
	s.queue = []func(){func() {}}
	s.adapt()
	require.Equal(t, 272, s.limit)
	s.adapt()
	require.Equal(t, 280, s.limit)
}

// TestStepsShrunkBoundStillRunsEveryStep: with the CPU signal always busy the bound falls while
// hundreds of steps are queued behind the slots, all held; every step still runs, each exactly
// once, never more at once than the bound it started from (it only falls), and the slots all come
// free at the end.
func TestStepsShrunkBoundStillRunsEveryStep(t *testing.T) {
	t.Parallel()
	s := newStepsWith(64, func() bool { return true })
	const n = 2000
	var (
		mu          sync.Mutex
		ran         = make([]int, n)
		running     int
		overLimit   int
		wg          sync.WaitGroup
		releaseHeld = make(chan struct{})
	)
	wg.Add(startStepLimit + n)
	for range startStepLimit { // every slot held until all the steps below are queued
		held := make(chan struct{})
		go s.run(func() {
			defer wg.Done()
			close(held)
			<-releaseHeld
		})
		<-held
	}
	for i := range n {
		s.run(func() {
			defer wg.Done()
			mu.Lock()
			running++
			if running > startStepLimit {
				overLimit++
			}
			ran[i]++
			mu.Unlock()
			runtime.Gosched() // let other slots' steps overlap this one
			mu.Lock()
			running--
			mu.Unlock()
		})
	}
	require.Equal(t, n, s.waitingCount(), "with every slot held, each step queues")
	close(releaseHeld)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("queued steps were left behind")
	}
	for i, c := range ran {
		require.Equal(t, 1, c, "step %d", i)
	}
	require.Zero(t, overLimit, "no step ran beyond the bound")
	// A step's wg.Done comes before its goroutine hands back the slot (next): wait for the last
	// hand-back, a bounded number of looks.
	freed := func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.running == 0
	}
	for i := 0; i < 10_000 && !freed(); i++ {
		time.Sleep(time.Millisecond)
	}
	require.True(t, freed(), "every slot came free")
	s.mu.Lock()
	defer s.mu.Unlock()
	require.Equal(t, minStepLimit, s.limit, "the busy signal took the bound to its floor")
	require.False(t, s.waiting(), "no step is left in the queue")
}

// TestQuartileReaches: the third quartile of a histogram's gain since the last read, against a
// threshold on its bucket's lower edge.
func TestQuartileReaches(t *testing.T) {
	t.Parallel()
	buckets := []float64{0, 1e-4, 5e-4, 1e-3, 1e-2} // four buckets
	tests := []struct {
		name         string
		counts, last []uint64
		want         bool
	}{
		{"nothing gained", []uint64{5, 5, 5, 5}, []uint64{5, 5, 5, 5}, false},
		{"all fast", []uint64{100, 0, 0, 0}, []uint64{0, 0, 0, 0}, false},
		{"a fifth slow: the quartile is fast", []uint64{80, 0, 20, 0}, []uint64{0, 0, 0, 0}, false},
		{"a quarter slow and more", []uint64{70, 0, 30, 0}, []uint64{0, 0, 0, 0}, true},
		{"only the gain counts", []uint64{1000, 0, 30, 0}, []uint64{930, 0, 0, 0}, true},
		{"slow before, fast now", []uint64{100, 0, 500, 0}, []uint64{0, 0, 500, 0}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, quartileReaches(tt.counts, tt.last, buckets, 5e-4))
		})
	}
}

// TestSchedBusyReadsTheRuntime: the runtime has the scheduling-latency histogram, and the first
// read, which has nothing to compare with, says not busy.
func TestSchedBusyReadsTheRuntime(t *testing.T) {
	t.Parallel()
	b := newSchedBusy()
	require.False(t, b.busy(), "the first read is the baseline")
	require.NotEmpty(t, b.last, "the runtime reports %s", schedLatencies)
}

// TestStepsLookAfterAWhile: steps that end slowly, fewer than lookEvery of them, still move the
// bound once lookAfter passed since the last look; before that they do not.
func TestStepsLookAfterAWhile(t *testing.T) {
	t.Parallel()
	clock := time.Unix(1_000_000, 0)
	looks := 0
	s := newStepsWith(512, func() bool { looks++; return false })
	s.now = func() time.Time { return clock }
	s.looked = clock
	s.queue = []func(){func() {}, func() {}} // handed over one by one: no goroutine is started
	s.running = s.limit
	step := s.next() // a step ended at once: no look
	require.NotNil(t, step, "the slot goes to a queued step")
	require.Zero(t, looks)
	require.Equal(t, startStepLimit, s.limit)
	clock = clock.Add(lookAfter)
	step = s.next()
	require.NotNil(t, step)
	require.Equal(t, 1, looks, "a step ending lookAfter after the last look looks")
	require.Equal(t, startStepLimit+4, s.limit, "and the queue makes the bound grow")
}
