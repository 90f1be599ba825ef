package attempt

import (
	"context"
	"sync"
)

// inflight counts the attempts in progress and lets Shutdown wait, bounded by a context, until
// none is left: an event (the last attempt ending closes a channel), not a polling loop.
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed when n falls to 0; nil while n is 0
}

func (f *inflight) add() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n == 0 {
		f.idle = make(chan struct{})
	}
	f.n++
}

func (f *inflight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n--
	if f.n == 0 {
		close(f.idle)
		f.idle = nil
	}
}

func (f *inflight) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// wait returns nil once no attempt is in progress, or ctx's error if it ends first.
func (f *inflight) wait(ctx context.Context) error {
	for {
		f.mu.Lock()
		idle := f.idle
		f.mu.Unlock()
		if idle == nil {
			return nil
		}
		select {
		case <-idle:
			// another attempt may have started since; look again
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
