package worker

import (
	"context"
	"time"
)

// stepRunnerIdle is how long a step goroutine waits for another step before it ends.
const stepRunnerIdle = 20 * time.Millisecond

// stepRunners runs the handler's steps (handler.go: ProcessTask) on goroutines other than the
// waiting attempts' own. A step goroutine that finished a step waits up to stepRunnerIdle for the
// next one, so that the stack it grew (HTTP, JSON, Redis) serves many steps instead of being
// grown again for each; there are as many as steps run at once at the busiest moment, never a
// fixed bound that could queue a step behind others. The zero value is ready to use.
//
// Steps that call AnySolver take a slot first (call): there are as many slots as the AnySolver
// client has connections, so a step that would only wait for a connection (with the deep stack
// of an HTTP call) waits for its slot instead, on the attempt's own shallow goroutine.
type stepRunners struct {
	work  chan func()   // unbuffered: a send succeeds only when a step goroutine is waiting
	slots chan struct{} // nil: no bound
}

func newStepRunners(slots int) stepRunners {
	s := stepRunners{work: make(chan func())}
	if slots > 0 {
		s.slots = make(chan struct{}, slots)
	}
	return s
}

// call is run for a step that calls AnySolver: it waits for a slot first. When ctx ends before
// one is free, the step runs without one: it sees ctx ended and pays for nothing new.
func (s *stepRunners) call(ctx context.Context, fn func()) {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-ctx.Done():
		}
	}
	s.run(fn)
}

// run runs fn on a step goroutine and waits for it. A panic in fn is raised again on the
// caller's goroutine, where asynq recovers it as it would have.
func (s *stepRunners) run(fn func()) {
	done := make(chan any, 1)
	step := func() {
		defer func() { done <- recover() }()
		fn()
	}
	select {
	case s.work <- step:
	default:
		go s.runner(step)
	}
	if p := <-done; p != nil {
		panic(p)
	}
}

// runner runs step, then the steps it is handed, until none came for stepRunnerIdle.
func (s *stepRunners) runner(step func()) {
	idle := time.NewTimer(stepRunnerIdle)
	defer idle.Stop()
	for {
		step()
		idle.Reset(stepRunnerIdle)
		select {
		case step = <-s.work:
		case <-idle.C:
			return
		}
	}
}
