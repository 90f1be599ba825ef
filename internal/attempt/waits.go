package attempt

import (
	"sync"
	"time"
)

// waitWatchEvery is how often the attempts waiting for their next poll are checked for a
// context that ended (waits.watch).
const waitWatchEvery = 100 * time.Millisecond

// waits holds the attempts waiting for their next poll (machine.go), and watches their contexts.
//
// asynq ends a job's context when the job's deadline passes, its lease expires, an operator
// cancels it, or the server hands it back at shutdown, and the attempt's own deadline comes a
// margin before asynq's (attempt.err); a waiting attempt must then end at once, as a handler
// blocked on ctx.Done() would, not at its next poll. context.AfterFunc would tell
// each one, but costs each waiting attempt 384 bytes (a child context, its closure, and the
// parent's map of children: BenchmarkWatchingAContext) while thousands wait: instead one goroutine looks over the
// waiting attempts every waitWatchEvery, while any wait, and ends the waits whose context ended.
// The zero value is not ready: see newWaits.
type waits struct {
	every time.Duration
	fire  func(*attempt) // run by an attempt's timer when its wait is over
	ended func(*attempt) // run on a goroutine of its own for each wait whose context ended
	// realTime, when set, maps a wait to the real time its timer takes: a test whose clock is
	// virtual (the lifecycle model) keeps every wait short. nil: as asked.
	realTime func(time.Duration) time.Duration

	mu       sync.Mutex
	head     *attempt // the waiting attempts: a list through attempt.prevWait and nextWait
	watching bool     // a watch goroutine runs
}

func newWaits(every time.Duration, fire, ended func(*attempt)) *waits {
	return &waits{every: every, fire: fire, ended: ended}
}

// arm makes a wait for the attempt's next poll, d from now, unless its context ended or its own
// deadline passed already (false). The attempt's timer, made on its first wait and reset on the next, runs w.fire.
func (w *waits) arm(a *attempt, d time.Duration) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if a.err() != nil {
		return false
	}
	a.prevWait, a.nextWait = nil, w.head
	if w.head != nil {
		w.head.prevWait = a
	}
	w.head, a.waiting = a, true
	if w.realTime != nil {
		d = w.realTime(d)
	}
	if a.timer == nil {
		a.timer = time.AfterFunc(d, func() { w.fire(a) })
	} else {
		a.timer.Reset(d)
	}
	if !w.watching {
		w.watching = true
		go w.watch()
	}
	return true
}

// claim takes the attempt's wait, for the one caller that finds it still armed: the timer's
// fire or the watch.
func (w *waits) claim(a *attempt) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !a.waiting {
		return false
	}
	w.unlink(a)
	return true
}

func (w *waits) unlink(a *attempt) {
	if a.prevWait != nil {
		a.prevWait.nextWait = a.nextWait
	} else {
		w.head = a.nextWait
	}
	if a.nextWait != nil {
		a.nextWait.prevWait = a.prevWait
	}
	a.prevWait, a.nextWait, a.waiting = nil, nil, false
}

// watch ends the waits whose context ended or whose own deadline passed, every w.every, until
// none is left.
func (w *waits) watch() {
	t := time.NewTimer(w.every)
	defer t.Stop()
	var ended []*attempt
	for {
		<-t.C
		w.mu.Lock()
		if w.head == nil {
			w.watching = false
			w.mu.Unlock()
			return
		}
		for a := w.head; a != nil; {
			next := a.nextWait
			if a.err() != nil {
				w.unlink(a)
				a.timer.Stop()
				ended = append(ended, a)
			}
			a = next
		}
		w.mu.Unlock()
		for i, a := range ended {
			go w.ended(a)
			ended[i] = nil
		}
		ended = ended[:0]
		t.Reset(w.every)
	}
}
