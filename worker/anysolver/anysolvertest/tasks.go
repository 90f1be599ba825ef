package anysolvertest

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"
)

// remoteTask is one task the fake created: a record with timestamps, no goroutine.
type remoteTask struct {
	id         string
	numeric    bool
	key        string
	created    time.Time
	ready      time.Time
	solveTime  time.Duration
	solution   json.RawMessage
	cost       float64
	costString bool
	pollError  string
	pollFailed string
	pollHTTP   Fault
	polls      int
	answered   bool // its ready or failed answer was given
}

// idJSON is the id as it goes on the wire: a number or a string.
func (t *remoteTask) idJSON() json.RawMessage {
	if t.numeric {
		return json.RawMessage(t.id)
	}
	b, _ := json.Marshal(t.id)
	return b
}

// keyStats counts calls per Task.Key.
type keyStats struct {
	creates, polls int
	last           time.Time
}

// keyStatsLocked returns key's counters, creating them; s.mu is held.
func (s *Server) keyStatsLocked(key string, now time.Time) *keyStats {
	ks := s.perKey[key]
	if ks == nil {
		ks = &keyStats{}
		s.perKey[key] = ks
	}
	ks.last = now
	return ks
}

// TaskKey is Task.Key for a task object: its "websiteKey" if that is a non-empty string, else
// "h:" and a hash of its JSON, so tests can find the counts of tasks without a websiteKey.
func TaskKey(task map[string]any) string {
	if wk, ok := task["websiteKey"].(string); ok && wk != "" {
		return wk
	}
	b, _ := json.Marshal(task) // decoded JSON re-encodes; map keys come out sorted
	h := fnv.New64a()
	_, _ = h.Write(b)
	return fmt.Sprintf("h:%016x", h.Sum64())
}

// newTaskLocked creates, charges and stores a task; s.mu is held.
func (s *Server) newTaskLocked(key string, now time.Time, solveTime time.Duration) *remoteTask {
	s.seq++
	t := &remoteTask{
		key:        key,
		created:    now,
		ready:      now.Add(solveTime),
		solveTime:  solveTime,
		cost:       s.cost,
		costString: (s.seq/2)%2 == 1, // with odd = numeric, all four id/cost kinds occur
	}
	if s.seq%2 == 1 {
		t.id, t.numeric = strconv.FormatUint(700000000+s.seq, 10), true
	} else {
		r := s.rng
		t.id = fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, r.Uint32()&0xfff, s.seq)
	}
	s.tasks[t.id] = t
	s.balance = roundMoney(s.balance - s.cost)
	s.charged = roundMoney(s.charged + s.cost)
	s.counts.Created++
	s.counts.InFlight++
	return t
}

// answeredLocked records that t's final answer (ready or failed) was given; s.mu is held.
func (s *Server) answeredLocked(t *remoteTask, solved bool) {
	if t.answered {
		return
	}
	t.answered = true
	s.counts.InFlight--
	if solved {
		s.counts.Solved++
	} else {
		s.counts.Failed++
	}
}

// forgetLocked drops t; s.mu is held.
func (s *Server) forgetLocked(t *remoteTask) {
	if _, ok := s.tasks[t.id]; !ok {
		return
	}
	delete(s.tasks, t.id)
	if !t.answered {
		s.counts.InFlight--
	}
}

func (s *Server) expired(t *remoteTask, now time.Time) bool {
	return !now.Before(t.created.Add(s.ttl))
}

// sweepLocked forgets expired tasks and idle key counters, at most every sweepEvery of the
// fake's clock; s.mu is held. Calls drive it, so an idle fake holds its memory until the next call.
func (s *Server) sweepLocked(now time.Time) {
	every := min(s.ttl/4, 30*time.Second)
	if now.Sub(s.lastSweep) < every {
		return
	}
	s.lastSweep = now
	for _, t := range s.tasks {
		if s.expired(t, now) {
			s.forgetLocked(t)
		}
	}
	keyTTL := max(2*s.ttl, time.Hour)
	for k, ks := range s.perKey {
		if now.Sub(ks.last) >= keyTTL {
			delete(s.perKey, k)
		}
	}
}
