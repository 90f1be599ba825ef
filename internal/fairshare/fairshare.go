// Package fairshare keeps a worker process's fair share of its job slots between gateway keys: it
// counts, in memory, the slots each key's jobs hold, and says whether a job starting now should be
// handed back because its key holds its share while the slots run short.
//
// It does not hand anything back itself (the attempt machine does, through decide) and knows
// nothing of Redis or of other worker processes: each process shares its own slots.
package fairshare

import (
	"sync"
	"sync/atomic"
	"time"
)

// ReserveFraction is the part of a worker's slots kept for keys below their share: the slots
// past the line Concurrency - Reserve. Reserve is at least one slot.
const ReserveFraction = 0.1

// Reserve is the number of slots kept for keys below their share out of capacity: a tenth, at
// least one; 0 for a capacity under 2, where there is nothing to share.
func Reserve(capacity int) int {
	if capacity < 2 {
		return 0
	}
	return max(1, int(float64(capacity)*ReserveFraction))
}

// SeenWindow is how long a key counts as one of this worker's tenants after its last job started.
const SeenWindow = 10 * time.Minute

// Share counts the slots in use by key and decides who may take one more. The zero value and a
// nil *Share admit every job.
//
// The rule: while fewer than Line slots are in use, every job is admitted. Past the line, in the
// reserve, a job is admitted only if its key holds no slot yet or fewer than Line / (keys holding
// slots), so that the keys already in hand can never fill the reserve and a job of another key,
// which asynq fetches into a free slot, is let in.
//
// The reserve is kept only while there is someone to keep it for: two keys or more have started
// jobs in this worker within SeenWindow, or the gateways have recorded two key names or more
// (SetGatewayKeys). A single tenant (every producer's jobs are the key "") uses every slot.
type Share struct {
	line        int // slots usable without a look at the share; 0: no sharing at all
	now         func() time.Time
	gatewayKeys atomic.Int64
	mu          sync.Mutex
	busy        int
	byKey       map[string]int
	seen        map[string]time.Time // the keys whose jobs started within SeenWindow
}

// New returns a Share of capacity slots, reserve of which are kept for keys below their share.
// A capacity under 2 or a reserve under 1 gives a Share that admits every job.
func New(capacity, reserve int) *Share {
	if capacity < 2 || reserve < 1 || reserve >= capacity {
		return &Share{}
	}
	return &Share{line: capacity - reserve, now: time.Now, byKey: map[string]int{}, seen: map[string]time.Time{}}
}

// WithClock makes s read the time from now (tests); it returns s.
func (s *Share) WithClock(now func() time.Time) *Share {
	if s != nil && s.line != 0 && now != nil {
		s.now = now
	}
	return s
}

// SetGatewayKeys tells s how many key names the gateways have recorded (keys.GatewayKeyNames):
// with two or more the reserve is kept even before a second key's job has started here.
func (s *Share) SetGatewayKeys(n int) {
	if s != nil {
		s.gatewayKeys.Store(int64(n))
	}
}

// Admit takes a slot for a job of key unless the job is to be handed back, and returns the
// slot's release (call it once, when the job's attempt ends) or admitted false, when it took
// nothing.
func (s *Share) Admit(key string) (release func(), admitted bool) {
	if s == nil || s.line == 0 {
		return func() {}, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.see(key)
	if !s.fits(key) {
		return nil, false
	}
	return s.take(key), true
}

// Take takes a slot for a job of key whatever the share says: a job that must go on (a paid
// remote task to resume) still counts. Call release once, when the job's attempt ends.
func (s *Share) Take(key string) (release func()) {
	if s == nil || s.line == 0 {
		return func() {}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.see(key)
	return s.take(key)
}

// see records that a job of key starts now and forgets the keys not seen within SeenWindow;
// s.mu is held.
func (s *Share) see(key string) {
	now := s.now()
	s.seen[key] = now
	if len(s.seen) > 1 {
		for k, at := range s.seen {
			if now.Sub(at) > SeenWindow {
				delete(s.seen, k)
			}
		}
	}
}

// shared reports whether the reserve is kept: two tenants or more; s.mu is held.
func (s *Share) shared() bool {
	return len(s.seen) >= 2 || s.gatewayKeys.Load() >= 2
}

// fits reports whether a job of key may take one more slot; s.mu is held.
func (s *Share) fits(key string) bool {
	if s.busy < s.line || !s.shared() {
		return true
	}
	mine := s.byKey[key]
	if mine == 0 {
		return true
	}
	return mine < s.line/len(s.byKey) // len counts key: it holds a slot
}

// take counts a slot of key and returns its release; s.mu is held.
func (s *Share) take(key string) func() {
	s.busy++
	s.byKey[key]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.busy--
			if s.byKey[key]--; s.byKey[key] <= 0 {
				delete(s.byKey, key)
			}
		})
	}
}

// InUse is how many slots key's jobs hold, and how many all jobs hold.
func (s *Share) InUse(key string) (mine, all int) {
	if s == nil || s.line == 0 {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byKey[key], s.busy
}
