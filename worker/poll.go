package worker

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for PollConfig, and the shape of adaptive polling.
const (
	PollIntervalDefault    = 3 * time.Second
	PollMinIntervalDefault = time.Second
	PollMaxIntervalDefault = 10 * time.Second
	PollFirstDefault       = 5 * time.Second
	PollFirstImageDefault  = time.Second
	// PollFirstQuantile is the share of recent tasks of a type that should be ready at their
	// first poll: the first poll goes out at this quantile of their solve times.
	PollFirstQuantile = 0.40
	// PollWindow is how many recent solves of each task type the schedule is learned from.
	PollWindow = 256
	// PollMinSamples is how many solves of a type are needed before its schedule is learned.
	PollMinSamples = 16
	// MaxPollsPerTask is AnySolver's limit of getTaskResult calls for one task.
	MaxPollsPerTask = 120
)

// Shape of the learned schedule: after the first poll, every median/pollDenseDivisor until the
// pollSparseQuantile (where most tasks get ready), then every median/pollSparseDivisor, both
// within MinInterval and Interval; past the 90th percentile the interval stretches by a quarter
// of the time spent there, up to MaxInterval. pollBudgetDivisor bounds every interval from below
// by elapsed/16, which keeps any schedule within MaxPollsPerTask in AnySolver's 5 minutes.
//
// The numbers come from simulating log-normal solve times (median 12 s, p90 30 s) against a
// fixed 3 s interval: polling densely where answers are likely and first at the 40th percentile
// spends about 0.8 of the polls for the same median delay between a task being ready and seen.
const (
	pollDenseDivisor   = 7.0
	pollSparseDivisor  = 4.5
	pollSparseQuantile = 0.75
	pollBudgetDivisor  = 16
	// pollMinIntervalFloor is the least MinInterval the budget guarantee holds for.
	pollMinIntervalFloor = 100 * time.Millisecond
)

// PollConfig says when a remote task is polled.
//
// Adaptive polling learns, per task type, how long AnySolver takes from a window of PollWindow
// recent solves. The first poll goes out when about PollFirstQuantile of recent tasks of that type were
// ready; then polls come every seventh of the median solve time until the 75th percentile, then
// every 4.5th (both within MinInterval and Interval), and ever more rarely past the 90th
// percentile, up to MaxInterval. Until PollMinSamples solves of a type were seen it polls first at
// PollFirstDefault (PollFirstImageDefault for image types), then every Interval.
//
// A task ready at its first poll only says its solve time was at most that long. When more
// tasks than PollFirstQuantile are ready at their first poll, the first poll is moved earlier in
// proportion, so a type whose tasks are always ready at once is polled at once within a few
// dozen solves. Whatever was learned, no interval is shorter than a sixteenth of the time since
// createTask, which keeps a task within MaxPollsPerTask for the 5 minutes AnySolver keeps it.
type PollConfig struct {
	// Fixed turns adaptive polling off: first poll and every later one after Interval.
	Fixed bool
	// Interval is the fixed interval, and the longest adaptive interval before the tail.
	// Defaults to 3 s.
	Interval time.Duration
	// MinInterval is the shortest interval between two adaptive polls; it is at least 100 ms.
	// Defaults to 1 s.
	MinInterval time.Duration
	// MaxInterval is the longest interval, reached on the slow tail, unless the poll budget
	// (a sixteenth of the time since createTask) asks for longer. Defaults to 10 s.
	MaxInterval time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c PollConfig) WithDefaults() PollConfig {
	if c.Interval <= 0 {
		c.Interval = PollIntervalDefault
	}
	if c.MinInterval <= 0 {
		c.MinInterval = PollMinIntervalDefault
	}
	c.MinInterval = max(c.MinInterval, pollMinIntervalFloor)
	if c.MaxInterval < c.Interval {
		c.MaxInterval = max(PollMaxIntervalDefault, c.Interval)
	}
	return c
}

// pollPendingMax bounds the solves of one type waiting to join its window; beyond it every
// other one is dropped (and later ones thinned alike), which keeps their distribution.
const pollPendingMax = 16 * PollWindow

// poller keeps the recent solve times of each task type and derives the poll schedule.
type poller struct {
	cfg    PollConfig
	now    func() time.Time
	mu     sync.Mutex
	byType map[string]*solveTimes
}

// solveTimes is a window of PollWindow recent solves of one task type. Once full, a solve
// that joins replaces one chosen at random rather than the oldest: a batch's slowest tasks end
// last, and replacing by age would leave exactly them behind when the next batch came in, so
// that every batch would be polled later than the one before.
//
// A solve joins the window only once its task was created at least the type's 90th-percentile
// solve time ago. In a burst of tasks created together, the fast ones end first: were they
// counted at once, the window would hold only the burst's fast tasks, and the schedule of the
// rest of the burst would be learned from a distribution that is not the type's. Held back until
// the burst has mostly ended, its solves join together, thinned evenly if they are more than the
// window.
type solveTimes struct {
	ring      []sample
	rng       *rand.Rand // picks the solve a new one replaces; seeded, so runs repeat
	seen      int        // solves that joined the window
	changed   int        // solves that joined since the quantiles were computed
	q         quantiles
	buf       []time.Duration
	pending   []pendingSample // in the order they ended
	keepEvery int             // 1, or 2^k while a large burst is being thinned
	arrivals  int
}

type pendingSample struct {
	created time.Time
	s       sample
}

// sample is one solve: its time (the middle of the span between the last "processing" answer
// and the ready one), or for a task ready at its first poll, that poll's time as an upper bound.
type sample struct {
	t     time.Duration
	first bool
}

type quantiles struct{ first, median, sparse, q90 time.Duration }

func newPoller(cfg PollConfig) *poller {
	return &poller{cfg: cfg.WithDefaults(), now: time.Now, byType: map[string]*solveTimes{}}
}

// firstDelay is how long after createTask the first poll goes out.
func (p *poller) firstDelay(taskType string) time.Duration {
	if p.cfg.Fixed {
		return p.cfg.Interval
	}
	if q, ok := p.stats(taskType); ok {
		return q.first
	}
	if strings.Contains(strings.ToLower(taskType), "image") {
		return PollFirstImageDefault
	}
	return PollFirstDefault
}

// interval is the wait after a "processing" answer, elapsed after createTask.
func (p *poller) interval(taskType string, elapsed time.Duration) time.Duration {
	if p.cfg.Fixed {
		return p.cfg.Interval
	}
	d := p.cfg.Interval
	if q, ok := p.stats(taskType); ok {
		div := pollDenseDivisor
		if elapsed > q.sparse {
			div = pollSparseDivisor
		}
		d = min(max(time.Duration(float64(q.median)/div), p.cfg.MinInterval), p.cfg.Interval)
		if elapsed > q.q90 {
			// The slow tail: answers get rare, so do polls.
			d = min(max(d, (elapsed-q.q90)/4), p.cfg.MaxInterval)
		}
	}
	return max(d, elapsed/pollBudgetDivisor)
}

// observe records that a task of taskType was ready somewhere between lastBusy (the last
// "processing" answer, 0 when none: ready at its first poll) and readyAt, both measured from
// createTask.
func (p *poller) observe(taskType string, lastBusy, readyAt time.Duration) {
	if p.cfg.Fixed {
		return
	}
	s := sample{t: lastBusy + (readyAt-lastBusy)/2}
	if lastBusy <= 0 {
		s = sample{t: readyAt, first: true}
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.byType[taskType]
	if st == nil {
		st = &solveTimes{ring: make([]sample, PollWindow), rng: rand.New(rand.NewPCG(uint64(len(p.byType)), 0x9e3779b9)), keepEvery: 1}
		p.byType[taskType] = st
	}
	st.add(now.Add(-readyAt), s)
	st.commit(now)
}

// stats returns the schedule's quantiles for taskType; false while too few solves were seen.
func (p *poller) stats(taskType string) (quantiles, bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.byType[taskType]
	if st == nil {
		return quantiles{}, false
	}
	st.commit(now)
	if st.seen < PollMinSamples {
		return quantiles{}, false
	}
	return st.current(), true
}

// add queues a solve of a task created at created.
func (st *solveTimes) add(created time.Time, s sample) {
	st.arrivals++
	if st.arrivals%st.keepEvery != 0 {
		return
	}
	st.pending = append(st.pending, pendingSample{created: created, s: s})
	if len(st.pending) >= pollPendingMax {
		kept := st.pending[:0]
		for i, ps := range st.pending {
			if i%2 == 1 {
				kept = append(kept, ps)
			}
		}
		st.pending = kept
		st.keepEvery *= 2
	}
}

// commit moves the queued solves of tasks created long enough ago into the window: all of them
// while the type has too few solves to have a schedule, else those created a 90th-percentile
// solve time ago. It stops at the first that is too young, keeping the order they ended in.
func (st *solveTimes) commit(now time.Time) {
	if len(st.pending) == 0 {
		return
	}
	cut := now
	if st.seen >= PollMinSamples {
		cut = now.Add(-st.current().q90)
	}
	n := 0
	for n < len(st.pending) && !st.pending[n].created.After(cut) {
		n++
	}
	if n == 0 {
		return
	}
	step := max(float64(n)/PollWindow, 1)
	for k := 0.0; int(k) < n; k += step {
		st.push(st.pending[int(k)].s)
	}
	st.pending = st.pending[n:]
	if len(st.pending) == 0 {
		st.pending, st.keepEvery = nil, 1
	}
}

func (st *solveTimes) push(s sample) {
	if st.seen < PollWindow {
		st.ring[st.seen] = s
	} else {
		st.ring[st.rng.IntN(PollWindow)] = s
	}
	st.seen++
	st.changed++
}

// current returns the quantiles of the window, recomputed once a thirty-second of it changed:
// at a thousand solves a second, sorting the window for each would cost more than it tells.
func (st *solveTimes) current() quantiles {
	if st.changed > 0 && st.changed*32 >= min(st.seen, PollWindow) {
		st.q = st.quantiles()
		st.changed = 0
	}
	return st.q
}

// quantiles computes the schedule from the ring. Tasks ready at their first poll count at that
// poll's time, an upper bound: when they are more than PollFirstQuantile of the window, the
// quantile lies somewhere below every first poll that was made, so the first poll moves earlier
// by the square of how far their share overshoots, times the share of tasks that were not ready
// (relative to the target's): when every task of the window was ready at its first poll, the
// next first poll goes out at once.
func (st *solveTimes) quantiles() quantiles {
	n := min(st.seen, PollWindow)
	st.buf = st.buf[:0]
	firsts := 0
	for _, s := range st.ring[:n] {
		st.buf = append(st.buf, s.t)
		if s.first {
			firsts++
		}
	}
	slices.Sort(st.buf)
	at := func(q float64) time.Duration { return st.buf[int(math.Round(float64(n-1)*q))] }
	q := quantiles{first: at(PollFirstQuantile), median: at(0.5), sparse: at(pollSparseQuantile), q90: at(0.9)}
	if share := float64(firsts) / float64(n); share > PollFirstQuantile {
		shrink := PollFirstQuantile / share
		q.first = time.Duration(float64(q.first) * shrink * shrink * (1 - share) / (1 - PollFirstQuantile))
	}
	return q
}
