package monitor

import (
	"context"
	"sync"
	"time"
)

// Failed logins: a client address that keeps giving wrong credentials has its guesses rationed,
// while the right credentials from the same address are still let in at once.
const (
	// LoginFreeFailures is how many wrong credentials a client address may give before the
	// answers to its wrong ones are held.
	LoginFreeFailures = 5
	// LoginDelayMax bounds the hold of one wrong login's answer; the hold doubles from one second
	// with each failure past LoginFreeFailures, and held answers leave an address one per hold.
	LoginDelayMax = 10 * time.Second
	// LoginWaiting bounds the answers held at once per client address. While an address has that
	// many, its further requests with credentials get 429 without a check, so that it gets at most
	// one check per hold however many requests it sends. A held answer waits at most
	// LoginWaiting × LoginDelayMax, well inside WriteTimeout.
	LoginWaiting = 3
	// LoginForget is how long after its last failure a client address is forgotten.
	LoginForget = 15 * time.Minute
	// LoginTracked bounds the client addresses remembered at once.
	LoginTracked = 10_000
)

// loginLimiter rations the credential checks of each client address. Every check runs at once
// and the right credentials are let in at once; past LoginFreeFailures, the answer to a wrong one
// is held, and held answers leave one per hold (up to LoginDelayMax). An address's check waits for
// nothing but needs room: fewer than LoginWaiting answers held or checks under way. So the checks
// an address gets are bounded by one per hold plus LoginWaiting, whatever it sends, and a client
// that gives up on a held answer frees no room before the answer's time.
//
// A good login does not forget the address's failures: whoever shares the address with the
// operator (a NAT, a proxy) would otherwise get fresh free guesses with each of the operator's
// requests. Failures are forgotten LoginForget after the last one.
//
// Its map is bounded by LoginTracked: forgotten entries go first, then arbitrary ones (an
// attacker with that many addresses is not slowed by any per-address count anyway).
type loginLimiter struct {
	mu    sync.Mutex
	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) error
	seen  map[string]*loginFailures
	swept time.Time
}

type loginFailures struct {
	count    int         // wrong logins since the address was last forgotten
	last     time.Time   // the latest wrong login
	checking int         // credential checks under way
	held     []time.Time // when each held answer is released, ascending
}

// loginOutcome is what became of one login attempt.
type loginOutcome struct {
	ok      bool          // the credentials were right
	refused bool          // no check: the address has LoginWaiting answers held (429)
	retry   time.Duration // when refused: until the first held answer leaves
	held    time.Duration // when wrong: how long the answer was held
}

func newLoginLimiter(now func() time.Time, sleep func(context.Context, time.Duration) error) *loginLimiter {
	return &loginLimiter{now: now, sleep: sleep, seen: map[string]*loginFailures{}}
}

// attempt checks credentials from addr with check, when addr has room for a check. A wrong
// answer past the free failures is held until its turn, or until ctx ends (its turn stays taken).
func (l *loginLimiter) attempt(ctx context.Context, addr string, check func() bool) loginOutcome {
	f, retry, ok := l.begin(addr)
	if !ok {
		return loginOutcome{refused: true, retry: retry}
	}
	if check() {
		l.succeeded(addr, f)
		return loginOutcome{ok: true}
	}
	hold := l.failed(f)
	if hold > 0 {
		_ = l.sleep(ctx, hold) // a client gone away stops waiting; nothing is sent to it anyway
	}
	return loginOutcome{held: hold}
}

// begin makes room for a check from addr, or says how long until there may be some.
func (l *loginLimiter) begin(addr string) (f *loginFailures, retry time.Duration, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f, found := l.seen[addr]
	if !found {
		l.makeRoom(now)
		f = &loginFailures{}
		l.seen[addr] = f
	}
	f.release(now)
	busy := f.checking + len(f.held)
	if f.count+busy >= LoginFreeFailures && busy >= LoginWaiting {
		retry = time.Second // only checks under way: they end at once
		if len(f.held) > 0 {
			retry = max(f.held[0].Sub(now), time.Second)
		}
		return f, retry, false
	}
	f.checking++
	return f, 0, true
}

// succeeded ends a check with the right credentials.
func (l *loginLimiter) succeeded(addr string, f *loginFailures) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f.checking--
	if f.count == 0 && f.checking == 0 && len(f.held) == 0 && l.seen[addr] == f {
		delete(l.seen, addr)
	}
}

// failed ends a check with wrong credentials and returns how long its answer is held (0 while
// failures are free): until the hold after the address's last held answer.
func (l *loginLimiter) failed(f *loginFailures) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	f.checking--
	f.count++
	f.last = now
	if f.count <= LoginFreeFailures {
		return 0
	}
	from := now
	if n := len(f.held); n > 0 && f.held[n-1].After(now) {
		from = f.held[n-1]
	}
	until := from.Add(loginDelay(f.count))
	f.held = append(f.held, until)
	return until.Sub(now)
}

// loginDelay is the hold of the count-th wrong login (past the free ones).
func loginDelay(count int) time.Duration {
	shift := count - LoginFreeFailures - 1
	if shift >= 4 { // 16 s already exceeds LoginDelayMax
		return LoginDelayMax
	}
	return min(time.Second<<max(shift, 0), LoginDelayMax)
}

// release drops the held answers whose time has come and forgets failures long past
// (called with mu held).
func (f *loginFailures) release(now time.Time) {
	i := 0
	for i < len(f.held) && !f.held[i].After(now) {
		i++
	}
	f.held = f.held[i:]
	if len(f.held) == 0 {
		f.held = nil
	}
	if f.count > 0 && len(f.held) == 0 && now.Sub(f.last) > LoginForget {
		f.count = 0
	}
}

// idle reports whether the entry holds nothing worth remembering (called with mu held).
func (f *loginFailures) idle(now time.Time) bool {
	f.release(now)
	return f.count == 0 && f.checking == 0 && len(f.held) == 0
}

// makeRoom keeps the map under LoginTracked entries (called with mu held).
func (l *loginLimiter) makeRoom(now time.Time) {
	if len(l.seen) < LoginTracked {
		return
	}
	if now.Sub(l.swept) > time.Minute {
		l.swept = now
		for addr, f := range l.seen {
			if f.idle(now) {
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
