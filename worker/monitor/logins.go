package monitor

import (
	"sync"
	"time"
)

// Failed logins: a client that keeps giving wrong credentials is slowed down.
const (
	// LoginFreeFailures is how many wrong credentials in a row a client address may give before
	// it is slowed down.
	LoginFreeFailures = 5
	// LoginDelayMax bounds the wait between tries of a client that keeps failing; the wait
	// doubles from one second with each failure past LoginFreeFailures.
	LoginDelayMax = time.Minute
	// LoginForget is how long after its last failure a client address is forgotten.
	LoginForget = 15 * time.Minute
	// LoginTracked bounds the client addresses remembered at once.
	LoginTracked = 10_000
)

// loginLimiter counts failed logins per client address and says how long an address must wait
// before its credentials are looked at again. Its map is bounded by LoginTracked: expired
// entries go first, then arbitrary ones (an attacker with that many addresses is not slowed by
// any per-address count anyway).
type loginLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	seen  map[string]*loginFailures
	swept time.Time
}

type loginFailures struct {
	count int
	last  time.Time
	until time.Time // no credentials are checked before this
}

func newLoginLimiter(now func() time.Time) *loginLimiter {
	return &loginLimiter{now: now, seen: map[string]*loginFailures{}}
}

// wait returns how long the address must still wait; 0 lets it try.
func (l *loginLimiter) wait(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	f, ok := l.seen[addr]
	if !ok {
		return 0
	}
	return max(f.until.Sub(l.now()), 0)
}

// failed counts a wrong login and returns the wait it starts (0 while failures are free).
func (l *loginLimiter) failed(addr string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, ok := l.seen[addr]
	if ok && now.Sub(f.last) > LoginForget {
		f.count = 0
	}
	if !ok {
		l.makeRoom(now)
		f = &loginFailures{}
		l.seen[addr] = f
	}
	f.count++
	f.last = now
	if f.count <= LoginFreeFailures {
		return 0
	}
	delay := LoginDelayMax
	if shift := f.count - LoginFreeFailures - 1; shift < 6 {
		delay = min(time.Second<<shift, LoginDelayMax)
	}
	f.until = now.Add(delay)
	return delay
}

// succeeded forgets the address's failures.
func (l *loginLimiter) succeeded(addr string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.seen, addr)
}

// makeRoom keeps the map under LoginTracked entries (called with mu held).
func (l *loginLimiter) makeRoom(now time.Time) {
	if len(l.seen) < LoginTracked {
		return
	}
	if now.Sub(l.swept) > time.Minute {
		l.swept = now
		for addr, f := range l.seen {
			if now.Sub(f.last) > LoginForget && !now.Before(f.until) {
				delete(l.seen, addr)
			}
		}
	}
	for addr := range l.seen {
		if len(l.seen) < LoginTracked {
			break
		}
		delete(l.seen, addr)
	}
}

// tracked is how many addresses are remembered (for tests).
func (l *loginLimiter) tracked() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.seen)
}
