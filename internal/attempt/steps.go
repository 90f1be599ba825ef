package attempt

import "sync"

// steps bounds the steps of attempts running at once (drive's and fire's, each up to the next
// wait or the attempt's end) to as many as the AnySolver client has connections: a step that
// would only wait, for a connection deep in an HTTP call or for Redis while thousands of
// attempts end together, waits for its turn instead.
//
// A step beyond the bound is queued, not parked on a goroutine of its own: the goroutine whose
// step ends runs the next queued one. When the polls of thousands of jobs fall due together, as
// they do when the jobs end, the wait costs a queued closure each, not a parked goroutine and
// its stack (started as large as the runtime's average stack at that moment, which the deep
// steps and asynq's completions make several kilobytes).
type steps struct {
	bounded bool
	mu      sync.Mutex
	free    int      // slots not taken
	queue   []func() // the steps waiting for a slot, oldest first from head
	head    int
}

// newSteps bounds the steps running at once to n; n < 1: no bound.
func newSteps(n int) *steps {
	return &steps{bounded: n >= 1, free: n}
}

// run runs step on this goroutine when a slot is free, then the steps queued meanwhile, one
// after another, until none waits; when every slot is taken, it queues step and returns at once.
func (s *steps) run(step func()) {
	if !s.take(step) {
		return
	}
	for step != nil {
		step()
		step = s.next()
	}
}

// take takes a slot for step, or queues it (false).
func (s *steps) take(step func()) bool {
	if !s.bounded {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free > 0 {
		s.free--
		return true
	}
	s.queue = append(s.queue, step)
	return false
}

// next hands the slot of a step that ended to the oldest queued step, or frees it (nil).
func (s *steps) next() func() {
	if !s.bounded {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.queue) {
		s.free++
		return nil
	}
	step := s.queue[s.head]
	s.queue[s.head] = nil
	s.head++
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	}
	return step
}
