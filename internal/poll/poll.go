package poll

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Defaults for Config, and the shape of adaptive polling.
const (
	IntervalDefault    = 3 * time.Second
	MinIntervalDefault = time.Second
	MaxIntervalDefault = 10 * time.Second
	FirstDefault       = 5 * time.Second
	FirstImageDefault  = time.Second
	// FirstQuantile is the share of recent tasks of a type ready at their first poll past
	// which the first poll is moved earlier: such a share says only that the tasks were faster
	// than that poll.
	FirstQuantile = 0.40
	// Window is how many recent solves of each task type the schedule is learned from.
	Window = 256
	// MinSamples is how many solves of a type are needed before its schedule is learned.
	MinSamples = 16
	// MaxPollsPerTask is the most getTaskResult calls a schedule plans for one task over the
	// 5 minutes AnySolver keeps it (the captcha services' customary limit). It shapes the
	// schedules; giving up on a paid task is decided by its lifetime alone.
	MaxPollsPerTask = 120
)

// The learned schedule. A task ready at time T is seen at the first poll after T; the wait in
// between is the added latency. A fixed interval I costs about T/I polls and adds I/2 on
// average, wherever T falls. Adaptive polling keeps that average wait, I/2, and spends fewer
// polls: it polls where answers are likely and rarely where they are not. For a given average
// wait the fewest polls come from intervals proportional to the square root of (the share of
// tasks still busy) / (the density of answers there), which means each interval's gap times
// the share of the window's tasks that get ready in it is the same multiple of the share
// still busy when it starts. The multiple is found by bisection so that the window's own
// tasks, polled on that schedule, wait on average pollMeanWaitShare of I/2 (the rest is a
// margin: a schedule fitted to 256 solves does a little worse on the next ones).
//
// On log-normal solve times (median 12 s, p90 30 s) this spends about 0.9 of a fixed 3 s
// interval's polls with the median, mean and 90th-percentile wait each a few percent below
// it. No schedule can do much better there: with the mean wait held at I/2 and the
// distribution known exactly, the square-root rule, which is the optimum, spends 0.86-0.88
// (TestPollNoScheduleReaches085).
const (
	pollMeanWaitShare = 0.9
	// pollKernel and pollKernelK smooth the window before planning: each solve is widened by
	// half the span of its pollKernelK neighbours either side (in the window's order), so a
	// schedule is planned on the shape of the solve times, not on where 256 of them happened
	// to fall, and stays sharp where they are sharp.
	pollKernel        = 0.5
	pollKernelK       = 8
	pollBudgetDivisor = 16
	// pollBisections bounds the search for the schedule's multiple.
	pollBisections = 24
	// pollMinIntervalFloor is the least MinInterval the budget guarantee holds for.
	pollMinIntervalFloor = 100 * time.Millisecond
)

// Config says when a remote task is polled.
//
// Adaptive polling learns, per task type, how long AnySolver takes from a window of Window
// recent solves, and plans a schedule of polls from it: dense where the window's tasks got
// ready, sparse where few did, with the same average wait between a task being ready and its
// poll as a fixed Interval would give (Interval/2) and fewer polls. Gaps stay within
// MinInterval and MaxInterval; past the slowest task in the window it polls every Interval.
// Until MinSamples solves of a type were seen it polls first at FirstDefault
// (FirstImageDefault for image types), then every Interval.
//
// A task ready at its first poll only says its solve time was at most that long. When more
// tasks than FirstQuantile are ready at their first poll, the first poll is moved earlier in
// proportion, so a type whose tasks are always ready at once is polled at once within a few
// dozen solves. Whatever was learned, no interval is shorter than a sixteenth of the time since
// createTask, which keeps a task within MaxPollsPerTask for the 5 minutes AnySolver keeps it.
type Config struct {
	// Fixed turns adaptive polling off: first poll and every later one after Interval.
	Fixed bool
	// Interval is the fixed interval; adaptive polling keeps the average wait it would give
	// (half of it), and polls every Interval past what it learned. Defaults to 3 s.
	Interval time.Duration
	// MinInterval is the shortest interval between two adaptive polls; it is at least 100 ms.
	// Defaults to 1 s.
	MinInterval time.Duration
	// MaxInterval is the longest interval between two adaptive polls, unless the poll budget
	// (a sixteenth of the time since createTask) asks for longer. Defaults to 10 s.
	MaxInterval time.Duration
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = IntervalDefault
	}
	if c.MinInterval <= 0 {
		c.MinInterval = MinIntervalDefault
	}
	c.MinInterval = max(c.MinInterval, pollMinIntervalFloor)
	if c.MaxInterval < c.Interval {
		c.MaxInterval = max(MaxIntervalDefault, c.Interval)
	}
	return c
}

// pollPendingMax bounds the solves of one type waiting to join its window; beyond it every
// other one is dropped (and later ones thinned alike), which keeps their distribution.
const pollPendingMax = 16 * Window

// Poller keeps the recent solve times of each task type and derives the poll schedule.
type Poller struct {
	cfg    Config
	now    func() time.Time
	mu     sync.Mutex
	byType map[string]*solveTimes
}

// solveTimes is a window of Window recent solves of one task type. Once full, a solve
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
	changed   int        // solves that joined since the schedule was planned
	cfg       Config
	plan      schedule
	buf       []time.Duration
	events    []spreadEvent   // spread's scratch
	pending   []pendingSample // in the order they ended
	keepEvery int             // 1, or 2^k while a large burst is being thinned
	arrivals  int
}

type pendingSample struct {
	created time.Time
	s       sample
}

// sample is one solve: it got ready somewhere between lo, the last "processing" answer (0 for a
// task ready at its first poll), and hi, the answer that was ready.
type sample struct {
	lo, hi time.Duration
	first  bool
}

// schedule is a learned poll schedule: the times after createTask at which polls go out, and
// the window's 90th-percentile solve time.
type schedule struct {
	points []time.Duration // increasing; points[0] is the first poll
	q90    time.Duration
}

// New returns a Poller that has learned nothing yet.
func New(cfg Config) *Poller {
	return &Poller{cfg: cfg.WithDefaults(), now: time.Now, byType: map[string]*solveTimes{}}
}

// FirstDelay is how long after createTask the first poll goes out.
func (p *Poller) FirstDelay(taskType string) time.Duration {
	if p.cfg.Fixed {
		return p.cfg.Interval
	}
	if sc, ok := p.stats(taskType); ok {
		return sc.points[0]
	}
	if strings.Contains(strings.ToLower(taskType), "image") {
		return FirstImageDefault
	}
	return FirstDefault
}

// Interval is the wait after a "processing" answer, elapsed after createTask: until the next
// poll of the learned schedule, or Interval past it.
//
// Fixed or learned, no wait is shorter than a sixteenth of the time since createTask, so that
// even a short fixed interval polls a slow task within MaxPollsPerTask for the whole time
// AnySolver keeps it, instead of running out of polls and paying for the task again.
func (p *Poller) Interval(taskType string, elapsed time.Duration) time.Duration {
	if p.cfg.Fixed {
		return max(p.cfg.Interval, elapsed/pollBudgetDivisor)
	}
	d := p.cfg.Interval
	if sc, ok := p.stats(taskType); ok {
		// The next planned poll at least half a MinInterval away: a late answer (a slow
		// round trip) does not bring two polls together.
		i, _ := slices.BinarySearch(sc.points, elapsed+p.cfg.MinInterval/2)
		if i < len(sc.points) {
			d = sc.points[i] - elapsed
		}
	}
	return max(d, elapsed/pollBudgetDivisor)
}

// Observe records that a task of taskType was ready somewhere between lastBusy (the last
// "processing" answer, 0 when none: ready at its first poll) and readyAt, both measured from
// createTask.
func (p *Poller) Observe(taskType string, lastBusy, readyAt time.Duration) {
	if p.cfg.Fixed {
		return
	}
	s := sample{lo: max(lastBusy, 0), hi: max(readyAt, lastBusy, 0), first: lastBusy <= 0}
	if s.first {
		s.lo = s.hi / 2
	}
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.byType[taskType]
	if st == nil {
		st = &solveTimes{cfg: p.cfg, ring: make([]sample, Window), rng: rand.New(rand.NewPCG(uint64(len(p.byType)), 0x9e3779b9)), keepEvery: 1}
		p.byType[taskType] = st
	}
	st.add(now.Add(-readyAt), s)
	st.commit(now)
}

// stats returns the learned schedule for taskType; false while too few solves were seen.
func (p *Poller) stats(taskType string) (schedule, bool) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.byType[taskType]
	if st == nil {
		return schedule{}, false
	}
	st.commit(now)
	if st.seen < MinSamples {
		return schedule{}, false
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
	if st.seen >= MinSamples {
		cut = now.Add(-st.current().q90)
	}
	n := 0
	for n < len(st.pending) && !st.pending[n].created.After(cut) {
		n++
	}
	if n == 0 {
		return
	}
	step := max(float64(n)/Window, 1)
	for k := 0.0; int(k) < n; k += step {
		st.push(st.pending[int(k)].s)
	}
	st.pending = st.pending[n:]
	if len(st.pending) == 0 {
		st.pending, st.keepEvery = nil, 1
	}
}

func (st *solveTimes) push(s sample) {
	if st.seen < Window {
		st.ring[st.seen] = s
	} else {
		st.ring[st.rng.IntN(Window)] = s
	}
	st.seen++
	st.changed++
}

// current returns the window's schedule, planned again once a thirty-second of the window
// changed: at a thousand solves a second, planning for each would cost more than it tells.
func (st *solveTimes) current() schedule {
	if st.changed > 0 && st.changed*32 >= min(st.seen, Window) {
		st.plan = st.planSchedule()
		st.changed = 0
	}
	return st.plan
}

// planSchedule plans the poll schedule from the window (see pollMeanWaitShare's comment).
//
// Tasks ready at their first poll count at that poll's time, an upper bound: when they are
// more than FirstQuantile of the window, their solve times lie somewhere below every first
// poll that was made, so the first poll moves earlier by the square of how far their share
// overshoots, times the share of tasks that were not ready (relative to the target's): when
// every task of the window was ready at its first poll, the next first poll goes out at once.
func (st *solveTimes) planSchedule() schedule {
	n := min(st.seen, Window)
	firsts := 0
	for _, s := range st.ring[:n] {
		if s.first {
			firsts++
		}
	}
	share := float64(firsts) / float64(n)
	if firsts == n {
		// Every task was ready at its first poll: poll at once, then every Interval.
		st.buf = st.buf[:0]
		for _, s := range st.ring[:n] {
			st.buf = append(st.buf, s.hi)
		}
		return schedule{points: []time.Duration{0}, q90: quantile(st.buf, 0.9)}
	}
	st.buf, st.events = spread(st.ring[:n], st.buf[:0], Window, st.events)
	times := st.buf
	n = len(times)
	target := time.Duration(pollMeanWaitShare * float64(st.cfg.Interval) / 2)

	// The wait grows with the multiple and the polls shrink: find the largest whose mean wait
	// is within target, then the least that spends no more polls than it (when the polls come
	// in steps, a smaller multiple may cost nothing and wait less).
	lo, hi := 0.0, float64(times[n-1]+st.cfg.MaxInterval)
	best := planPolls(times, lo, st.cfg)
	for range pollBisections {
		mid := (lo + hi) / 2
		points := planPolls(times, mid, st.cfg)
		if wait, _ := cost(times, points); wait <= target {
			lo, best = mid, points
		} else {
			hi = mid
		}
	}
	_, polls := cost(times, best)
	lo, hi = 0, lo
	for range pollBisections {
		mid := (lo + hi) / 2
		points := planPolls(times, mid, st.cfg)
		if _, p := cost(times, points); p <= polls {
			hi, best = mid, points
		} else {
			lo = mid
		}
	}
	if share > FirstQuantile {
		shrink := FirstQuantile / share
		best[0] = time.Duration(float64(best[0]) * shrink * shrink * (1 - share) / (1 - FirstQuantile))
	}
	return schedule{points: best, q90: quantile(times, 0.9)}
}

// quantile is the q-quantile of times (nearest rank), which it sorts.
func quantile(times []time.Duration, q float64) time.Duration {
	slices.Sort(times)
	return times[int(math.Round(float64(len(times)-1)*q))]
}

// spread returns m solve times, sorted, distributed as the samples say: each solve got ready
// evenly anywhere between its lo and hi (widened by the kernel, see pollKernel), and the times
// are the m quantiles of that mix. Planned on the samples' bounds themselves, a schedule would
// learn the polls that measured them (a cold start polls every 3 s, so every bound sits on that
// grid) and miss the times between.
func spread(samples []sample, out []time.Duration, m int, events []spreadEvent) ([]time.Duration, []spreadEvent) {
	n := float64(len(samples))
	events = events[:0]
	mids := make([]time.Duration, len(samples))
	for i, s := range samples {
		mids[i] = s.lo + (s.hi-s.lo)/2
	}
	slices.Sort(mids)
	last := len(mids) - 1
	for _, s := range samples {
		i, _ := slices.BinarySearch(mids, s.lo+(s.hi-s.lo)/2)
		h := time.Duration(float64(mids[min(i+pollKernelK, last)]-mids[max(i-pollKernelK, 0)]) * pollKernel / 2)
		s.lo, s.hi = max(s.lo-h, 0), s.hi+h
		if w := s.hi - s.lo; w > 0 {
			r := 1 / (n * float64(w))
			events = append(events, spreadEvent{at: s.lo, rate: r}, spreadEvent{at: s.hi, rate: -r})
		} else {
			events = append(events, spreadEvent{at: s.hi, mass: 1 / n})
		}
	}
	slices.SortFunc(events, func(a, b spreadEvent) int { return cmp.Compare(a.at, b.at) })
	var (
		cdf, rate float64
		prev      time.Duration
		k         int
	)
	target := func() float64 { return (float64(k) + 0.5) / float64(m) }
	for _, e := range events {
		next := cdf + rate*float64(e.at-prev)
		for k < m && target() <= next && rate > 0 {
			out = append(out, prev+time.Duration((target()-cdf)/rate))
			k++
		}
		cdf, prev = next, e.at
		cdf += e.mass
		for k < m && target() <= cdf {
			out = append(out, e.at)
			k++
		}
		rate = max(rate+e.rate, 0)
	}
	for k < m { // rounding left the last quantiles short
		out = append(out, prev)
		k++
	}
	return out, events
}

// spreadEvent is where the density of solve times changes: by rate per nanosecond from at on,
// or by a point mass at at.
type spreadEvent struct {
	at         time.Duration
	rate, mass float64
}

// planPolls returns the poll times for multiple k over sorted solve times: from each poll at
// t, the next gap d is the least for which d times the share of times in (t, t+d] reaches k
// times the share of times after t. Gaps after the first are within MinInterval and
// MaxInterval. It ends with the first poll at or past the slowest time.
func planPolls(times []time.Duration, k float64, cfg Config) []time.Duration {
	n := len(times)
	points := make([]time.Duration, 0, 16)
	t, done := time.Duration(0), 0 // done: how many times are at or before t
	for done < n && len(points) < MaxPollsPerTask {
		need := k * float64(n-done) // in count × nanoseconds
		// The least j (counting times done..j) whose count, times the gap up to the next time,
		// reaches need: the gap is then reached between times[j] and times[j+1].
		j := done + sort.Search(n-done, func(i int) bool {
			j := done + i
			if j+1 >= n {
				return true
			}
			return float64(j-done+1)*float64(times[j+1]-t) >= need
		})
		d := max(times[j]-t, time.Duration(need/float64(j-done+1)))
		if len(points) > 0 {
			d = min(max(d, cfg.MinInterval), cfg.MaxInterval)
		}
		t += max(d, t/pollBudgetDivisor)
		points = append(points, t)
		done += sort.Search(n-done, func(i int) bool { return times[done+i] > t })
	}
	return points
}

// cost is what a schedule costs the sorted times, on average: the wait between each time and the
// first poll at or after it, and the polls it gets, the one that finds it ready included. (The
// schedule covers every time unless cut at MaxPollsPerTask; a time past it waits 0.)
func cost(times, points []time.Duration) (wait time.Duration, polls float64) {
	var sum time.Duration
	n, i := 0, 0
	for _, t := range times {
		for i < len(points) && points[i] < t {
			i++
		}
		if i < len(points) {
			sum += points[i] - t
		}
		n += i + 1
	}
	return sum / time.Duration(len(times)), float64(n) / float64(len(times))
}
