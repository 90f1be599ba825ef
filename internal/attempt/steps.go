package attempt

import (
	"runtime/metrics"
	"sync"
	"time"
)

// steps bounds the steps of attempts running at once (drive's and fire's, each up to the next
// wait or the attempt's end): at most as many as the AnySolver client has connections, and
// fewer while the process is short of CPU. A step that would only wait, for a connection deep
// in an HTTP call or for Redis while thousands of attempts end together, waits for its turn
// instead.
//
// A step beyond the bound is queued, not parked on a goroutine of its own: the goroutine whose
// step ends runs the next queued one. When the polls of thousands of jobs fall due together, as
// they do when the jobs end, the wait costs a queued closure each, not a parked goroutine and
// its stack (started as large as the runtime's average stack at that moment, which the deep
// steps and asynq's completions make several kilobytes).
//
// The bound adapts. At the end of every lookEvery-th step, or of a step lookAfter or more after
// the last look (so that slow calls do not slow it), it looks at how long the process's runnable
// goroutines waited for a CPU since the last look (the runtime's scheduling latencies). When a
// quarter of them waited busyLatency or longer, the process is short of CPU: more steps at once
// would only wait for it, each holding a connection, its buffers and a deep stack, so the bound
// falls by a quarter (not below minStepLimit). When they did not and steps are queued, it grows
// by a sixteenth (at least 4), up to the connection count. It starts at startStepLimit, so that
// a first burst does not open every connection at once. A worker waiting on a remote AnySolver is
// not short of CPU, so its bound grows to what the remote's latency needs, within seconds of a
// cold start; a burst that saturates the CPU (thousands of polls falling due together) runs a
// few dozen steps at a time instead of hundreds, with as many connections open.
type steps struct {
	max int // the bound's ceiling: the AnySolver client's connections; < 1: no bound
	// busy says whether the process was short of CPU since it was last asked (schedBusy).
	busy func() bool
	now  func() time.Time

	mu      sync.Mutex
	limit   int       // the bound now, minStepLimit..max
	running int       // steps running
	ended   int       // steps ended since the bound was last looked at
	looked  time.Time // when it was last looked at
	queue   []func()  // the steps waiting for a slot, oldest first from head
	head    int
}

// The bound's adaptation (see steps).
const (
	lookEvery      = 64
	lookAfter      = 100 * time.Millisecond
	minStepLimit   = 16
	startStepLimit = 32
	busyLatency    = 500 * time.Microsecond
)

// newSteps bounds the steps running at once to n, adapting below it to the CPU the process
// has (schedBusy); n < 1: no bound.
func newSteps(n int) *steps {
	return newStepsWith(n, newSchedBusy().busy)
}

// newStepsWith is newSteps with the CPU signal busy (tests give their own).
func newStepsWith(n int, busy func() bool) *steps {
	return &steps{max: n, limit: min(n, startStepLimit), busy: busy, now: time.Now}
}

// run runs step on this goroutine when a slot is free, then the steps queued meanwhile, one
// after another, until none waits or the bound shrank; when every slot is taken, it queues step
// and returns at once.
func (s *steps) run(step func()) {
	if !s.take(step) {
		return
	}
	s.loop(step)
}

// loop runs step and then the queued steps its slot is handed to.
func (s *steps) loop(step func()) {
	for step != nil {
		step()
		step = s.next()
	}
}

// take takes a slot for step, or queues it (false).
func (s *steps) take(step func()) bool {
	if s.max < 1 {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running < s.limit {
		s.running++
		return true
	}
	s.queue = append(s.queue, step)
	return false
}

// next is called when a step ended: it hands the step's slot to the oldest queued step, or
// frees it (nil) when none waits or the bound shrank below the steps running. When the bound
// grew, it starts queued steps on goroutines of their own up to it.
func (s *steps) next() func() {
	if s.max < 1 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ended++
	if now := s.now(); s.ended >= lookEvery || now.Sub(s.looked) >= lookAfter {
		s.ended, s.looked = 0, now
		s.adapt()
	}
	if s.running > s.limit || !s.waiting() {
		s.running--
		return nil
	}
	step := s.pop()
	for s.running < s.limit && s.waiting() {
		s.running++
		go s.loop(s.pop())
	}
	return step
}

// adapt moves the bound by the CPU signal; s.mu is held.
func (s *steps) adapt() {
	switch {
	case s.busy():
		s.limit = max(min(minStepLimit, s.max), s.limit-s.limit/4)
	case s.waiting() && s.limit < s.max:
		s.limit = min(s.max, s.limit+max(4, s.limit/16))
	}
}

func (s *steps) waiting() bool { return s.head < len(s.queue) }

// pop takes the oldest queued step; s.mu is held and one waits.
func (s *steps) pop() func() {
	step := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	}
	return step
}

// schedBusy reads the runtime's scheduling latencies (how long runnable goroutines waited for a
// CPU) and says whether the third quartile since the last read reached busyLatency. Each read
// reuses the histogram's memory; its caller serializes the reads (steps.mu).
type schedBusy struct {
	sample []metrics.Sample
	last   []uint64 // the cumulative counts of the last read
}

const schedLatencies = "/sched/latencies:seconds"

func newSchedBusy() *schedBusy {
	return &schedBusy{sample: []metrics.Sample{{Name: schedLatencies}}}
}

// busy reads the histogram and says whether the third quartile of what it gained since the last
// read reached busyLatency; false when the runtime has no such metric or nothing was scheduled.
func (b *schedBusy) busy() bool {
	metrics.Read(b.sample)
	if b.sample[0].Value.Kind() != metrics.KindFloat64Histogram {
		return false
	}
	h := b.sample[0].Value.Float64Histogram()
	if len(b.last) != len(h.Counts) {
		b.last = make([]uint64, len(h.Counts))
		copy(b.last, h.Counts)
		return false
	}
	busy := quartileReaches(h.Counts, b.last, h.Buckets, busyLatency.Seconds())
	copy(b.last, h.Counts)
	return busy
}

// quartileReaches says whether the third quartile of a histogram's gain (counts - last, per
// bucket; bucket i spans buckets[i] to buckets[i+1]) lies in a bucket whose lower edge is at
// least threshold; false when it gained nothing.
func quartileReaches(counts, last []uint64, buckets []float64, threshold float64) bool {
	var total uint64
	for i, c := range counts {
		total += c - last[i]
	}
	if total == 0 {
		return false
	}
	var seen uint64
	for i, c := range counts {
		seen += c - last[i]
		if 4*seen >= 3*total {
			return buckets[i] >= threshold
		}
	}
	return false
}
