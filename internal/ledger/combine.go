package ledger

import (
	"context"
	"sync"
)

// batchMax bounds how many calls one script run serves, so that a script's arguments stay
// small whatever the number of attempts in flight.
const batchMax = 256

// combiner runs calls of one kind in batches: one script run serves every call that arrived
// while the previous run of the same key was in flight (a group commit). A call that finds no
// run in flight starts one at once, so a lone call waits for one round trip, as it would alone;
// under load the calls that queue up behind a run share the next one, and Redis runs one script
// for all of them instead of one each. Each call still gets its own answer, in its order in the
// batch, and the script applies the ledger's rule to each in turn, so a batch admits exactly
// what the same calls one by one would.
type combiner[K comparable, Req, Res any] struct {
	run func(ctx context.Context, key K, reqs []Req) ([]Res, error)

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

func newCombiner[K comparable, Req, Res any](run func(context.Context, K, []Req) ([]Res, error)) *combiner[K, Req, Res] {
	return &combiner[K, Req, Res]{run: run, waiting: map[K][]*batch[Req, Res]{}, busy: map[K]bool{}}
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

// serve runs key's gathering batches, oldest first, until none is left.
func (c *combiner[K, Req, Res]) serve(ctx context.Context, key K) {
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
