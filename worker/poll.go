package worker

import (
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults for PollConfig.
const (
	PollIntervalDefault    = 3 * time.Second
	PollMinIntervalDefault = time.Second
	PollMaxIntervalDefault = 10 * time.Second
	PollFirstDefault       = 5 * time.Second
	PollFirstImageDefault  = time.Second
	PollFirstQuantile      = 0.33
	PollWindow             = 256
	PollMinSamples         = 16
	// MaxPollsPerTask is AnySolver's limit of getTaskResult calls for one task.
	MaxPollsPerTask = 120
)

// PollConfig says when a remote task is polled.
//
// Adaptive polling learns, per task type, how long AnySolver takes: the first poll goes out
// when about a third of recent tasks of that type were ready (their PollFirstQuantile), then
// every fifth of the median solve time (within MinInterval and Interval), stretching towards
// MaxInterval once the task is slower than nine in ten. Until PollMinSamples solves of a type
// were seen it polls at PollFirstDefault, then every Interval.
type PollConfig struct {
	// Fixed turns adaptive polling off: first poll and every later one after Interval.
	Fixed bool
	// Interval is the fixed interval, and the longest adaptive interval before the tail.
	// Defaults to 3 s.
	Interval time.Duration
	// MinInterval is the shortest interval between two polls. Defaults to 1 s.
	MinInterval time.Duration
	// MaxInterval is the longest interval, reached on the slow tail. Defaults to 10 s.
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
	if c.MaxInterval < c.Interval {
		c.MaxInterval = max(PollMaxIntervalDefault, c.Interval)
	}
	return c
}

// poller keeps the recent solve times of each task type and derives the poll schedule.
type poller struct {
	cfg    PollConfig
	mu     sync.Mutex
	byType map[string]*solveTimes
}

type solveTimes struct {
	ring  []time.Duration
	next  int
	seen  int
	stale bool
	q     quantiles
}

type quantiles struct{ q33, median, q90 time.Duration }

func newPoller(cfg PollConfig) *poller {
	return &poller{cfg: cfg.WithDefaults(), byType: map[string]*solveTimes{}}
}

// firstDelay is how long after createTask the first poll goes out.
func (p *poller) firstDelay(taskType string) time.Duration {
	if p.cfg.Fixed {
		return p.cfg.Interval
	}
	if q, ok := p.stats(taskType); ok {
		return max(q.q33, p.cfg.MinInterval/2)
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
	q, ok := p.stats(taskType)
	if !ok {
		return p.cfg.Interval
	}
	d := min(max(q.median/5, p.cfg.MinInterval), p.cfg.Interval)
	if elapsed > q.q90 {
		// The slow tail: stretch so a task never needs more than AnySolver's poll limit.
		d = min(max(d, (elapsed-q.q90)/4), p.cfg.MaxInterval)
	}
	return d
}

// observe records that a task of taskType was ready somewhere between lastBusy (the last
// "processing" answer, 0 when none) and readyAt, both measured from createTask.
func (p *poller) observe(taskType string, lastBusy, readyAt time.Duration) {
	if p.cfg.Fixed {
		return
	}
	sample := lastBusy + (readyAt-lastBusy)/2
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.byType[taskType]
	if s == nil {
		s = &solveTimes{ring: make([]time.Duration, PollWindow)}
		p.byType[taskType] = s
	}
	s.ring[s.next] = sample
	s.next = (s.next + 1) % PollWindow
	s.seen++
	s.stale = true
}

// stats returns the quantiles of taskType; false while too few solves were seen.
func (p *poller) stats(taskType string) (quantiles, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.byType[taskType]
	if s == nil || s.seen < PollMinSamples {
		return quantiles{}, false
	}
	if s.stale {
		n := min(s.seen, PollWindow)
		sorted := slices.Clone(s.ring[:n])
		slices.Sort(sorted)
		s.q = quantiles{q33: sorted[int(float64(n-1)*PollFirstQuantile)],
			median: sorted[(n-1)/2], q90: sorted[int(float64(n-1)*0.9)]}
		s.stale = false
	}
	return s.q, true
}
