package ledger

import (
	"context"
	"sync"
	"time"
)

// gatherFor is how long a run that starts on an idle key waits for company before it goes to
// Redis. Attempts start one at a time (asynq fetches jobs one by one), so without it most calls
// would find no run in flight and go alone; a few milliseconds before a createTask that takes
// AnySolver seconds to solve let the calls of a busy worker share one script run, which is what
// a capped queue's throughput is bound by (Redis's time, and the worker's, per call).
const gatherFor = 5 * time.Millisecond

// batchMax bounds how many calls one script run serves, so that a script's arguments stay
// small whatever the number of attempts in flight.
const batchMax = 256

// combiner runs calls of one kind in batches: one script run serves every call that arrived
// while the previous run of the same key was in flight, or while a run starting on an idle key
// waited its linger (a group commit). A lone call waits for the linger and one round trip;
// under load the calls share runs, and Redis runs one script for many instead of one each. Each call still gets its own answer, in its order in the
// batch, and the script applies the ledger's rule to each in turn, so a batch admits exactly
// what the same calls one by one would.
type combiner[K comparable, Req, Res any] struct {
	run    func(ctx context.Context, key K, reqs []Req) ([]Res, error)
	linger time.Duration // how long a run starting on an idle key waits for more calls

	mu      sync.Mutex
	waiting map[K][]*batch[Req, Res] // batches gathering calls, oldest first, by key
	busy    map[K]bool               // a run is in flight for the key
}

// batch is the calls one script run serves and, once done is closed, its answers.
type batch[Req, Res any] struct {
	reqs []Req
	res  []Res
	err  error
	done chan struct{}
}

func newCombiner[K comparable, Req, Res any](linger time.Duration, run func(context.Context, K, []Req) ([]Res, error)) *combiner[K, Req, Res] {
	return &combiner[K, Req, Res]{run: run, linger: linger, waiting: map[K][]*batch[Req, Res]{}, busy: map[K]bool{}}
}

// do adds req to the batch gathering for key and returns its answer once the batch ran. A call
// whose ctx ends first returns ctx's error; its batch still runs, so what it asked for may
// still be done (a reservation then stays held at its estimate, never settled: the budget
// errs on the side of spending less).
func (c *combiner[K, Req, Res]) do(ctx context.Context, key K, req Req) (Res, error) {
	c.mu.Lock()
	q := c.waiting[key]
	if len(q) == 0 || len(q[len(q)-1].reqs) >= batchMax {
		q = append(q, &batch[Req, Res]{done: make(chan struct{})})
		c.waiting[key] = q
	}
	b := q[len(q)-1]
	i := len(b.reqs)
	b.reqs = append(b.reqs, req)
	if !c.busy[key] {
		c.busy[key] = true
		go c.serve(context.WithoutCancel(ctx), key)
	}
	c.mu.Unlock()
	select {
	case <-b.done:
		if b.err != nil {
			var zero Res
			return zero, b.err
		}
		return b.res[i], nil
	case <-ctx.Done():
		var zero Res
		return zero, ctx.Err()
	}
}

// serve runs key's gathering batches, oldest first, until none is left, the first after the
// linger.
func (c *combiner[K, Req, Res]) serve(ctx context.Context, key K) {
	if c.linger > 0 {
		time.Sleep(c.linger)
	}
	for {
		c.mu.Lock()
		q := c.waiting[key]
		if len(q) == 0 {
			delete(c.waiting, key)
			delete(c.busy, key)
			c.mu.Unlock()
			return
		}
		b := q[0]
		c.waiting[key] = q[1:]
		c.mu.Unlock()
		b.res, b.err = c.run(ctx, key, b.reqs)
		close(b.done)
	}
}
