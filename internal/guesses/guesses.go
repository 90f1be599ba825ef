// Package guesses slows down a client address that keeps sending wrong credentials: after a few
// free failures each further one makes the address wait, longer each time, before its
// credentials are looked at again.
//
// It keeps its counts in the memory of one process, bounded in size; it does not check
// credentials itself nor decide what a refused client is answered.
package guesses

import (
	"sync"
	"time"
)

// Defaults of a Limiter.
const (
	// FreeFailuresDefault is how many wrong credentials in a row an address may give before it
	// waits.
	FreeFailuresDefault = 5
	// MaxWaitDefault bounds an address's wait; the wait doubles from one second with each
	// failure past the free ones.
	MaxWaitDefault = time.Minute
	// ForgetDefault is how long after its last failure an address starts afresh.
	ForgetDefault = 15 * time.Minute
	// TrackedDefault bounds the addresses remembered at once.
	TrackedDefault = 10_000
)

// Params configures a Limiter; a zero field takes its default.
type Params struct {
	// FreeFailures defaults to FreeFailuresDefault.
	FreeFailures int
	// MaxWait defaults to MaxWaitDefault.
	MaxWait time.Duration
	// Forget defaults to ForgetDefault.
	Forget time.Duration
	// Tracked defaults to TrackedDefault.
	Tracked int
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// Limiter counts wrong credentials per client address. Its memory is bounded by Params.Tracked:
// forgotten entries go first, then arbitrary ones (an attacker with that many addresses is not
// slowed by any per-address count anyway). It is safe for concurrent use.
type Limiter struct {
	p     Params
	mu    sync.Mutex
	seen  map[string]*failures
	swept time.Time
}

type failures struct {
	count int
	last  time.Time
	until time.Time // no credentials of the address are checked before this
}

// New returns a Limiter on p.
func New(p Params) *Limiter {
	if p.FreeFailures <= 0 {
		p.FreeFailures = FreeFailuresDefault
	}
	if p.MaxWait <= 0 {
		p.MaxWait = MaxWaitDefault
	}
	if p.Forget <= 0 {
		p.Forget = ForgetDefault
	}
	if p.Tracked <= 0 {
		p.Tracked = TrackedDefault
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Limiter{p: p, seen: map[string]*failures{}}
}

// Wait returns how long addr must still wait before its credentials are checked; 0 lets it try.
func (l *Limiter) Wait(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.seen[addr]
	if !ok {
		return 0
	}
	return max(f.until.Sub(l.p.Now()), 0)
}

// Failed counts a wrong credential from addr and returns the wait it starts (0 while failures
// are free).
func (l *Limiter) Failed(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.p.Now()
	f, ok := l.seen[addr]
	if ok && now.Sub(f.last) > l.p.Forget {
		f.count = 0
	}
	if !ok {
		l.makeRoom(now)
		f = &failures{}
		l.seen[addr] = f
	}
	f.count++
	f.last = now
	if f.count <= l.p.FreeFailures {
		return 0
	}
	wait := l.p.MaxWait
	if shift := f.count - l.p.FreeFailures - 1; shift < 30 {
		wait = min(time.Second<<shift, l.p.MaxWait)
	}
	f.until = now.Add(wait)
	return wait
}

// Succeeded forgets addr's failures.
func (l *Limiter) Succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, addr)
}

// Tracked is how many addresses are remembered.
func (l *Limiter) Tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}

// makeRoom keeps the map under Params.Tracked entries (called with mu held).
func (l *Limiter) makeRoom(now time.Time) {
	if len(l.seen) < l.p.Tracked {
		return
	}
	if now.Sub(l.swept) > time.Minute {
		l.swept = now
		for addr, f := range l.seen {
			if now.Sub(f.last) > l.p.Forget && !now.Before(f.until) {
				delete(l.seen, addr)
			}
		}
	}
	for addr := range l.seen {
		if len(l.seen) < l.p.Tracked {
			break
		}
		delete(l.seen, addr)
	}
}
