package worker

import (
	"container/heap"
	"math"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// The poll schedule is tested in virtual time: simPoll plays the handler's poll loop (first
// poll after firstDelay, then interval after each "processing", observe on "ready") for a batch
// of tasks created together, on a clock the simulation moves. No test sleeps or times anything.

type simClock struct{ t time.Time }

func (c *simClock) now() time.Time { return c.t }

type simTask struct {
	solve, next, lastBusy time.Duration
	polls                 int
}

type simQueue []*simTask

func (q simQueue) Len() int           { return len(q) }
func (q simQueue) Less(i, j int) bool { return q[i].next < q[j].next }
func (q simQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)        { *q = append(*q, x.(*simTask)) }
func (q *simQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}

// simResult is what a batch cost: polls per task and the delay between a task being ready and
// the poll that saw it.
type simResult struct {
	pollsPerTask float64
	latencyP50   time.Duration
	maxPolls     int
}

// simPoll runs tasks with the given solve times, all created at the clock's time, through p,
// and moves the clock a minute past the last answer.
func simPoll(p *poller, clock *simClock, taskType string, solves []time.Duration) simResult {
	start := clock.t
	q := &simQueue{}
	for _, s := range solves {
		heap.Push(q, &simTask{solve: s, next: p.firstDelay(taskType)})
	}
	var res simResult
	total := 0
	lat := make([]time.Duration, 0, len(solves))
	for q.Len() > 0 {
		t := heap.Pop(q).(*simTask)
		clock.t = start.Add(t.next)
		t.polls++
		total++
		if t.next >= t.solve {
			p.observe(taskType, t.lastBusy, t.next)
			lat = append(lat, t.next-t.solve)
			res.maxPolls = max(res.maxPolls, t.polls)
			continue
		}
		t.lastBusy = t.next
		t.next += p.interval(taskType, t.next)
		heap.Push(q, t)
	}
	clock.t = clock.t.Add(time.Minute)
	slices.Sort(lat)
	res.pollsPerTask = float64(total) / float64(len(solves))
	res.latencyP50 = lat[len(lat)/2]
	return res
}

func newSimPoller(cfg PollConfig) (*poller, *simClock) {
	clock := &simClock{t: time.Unix(1_700_000_000, 0)}
	p := newPoller(cfg)
	p.now = clock.now
	return p, clock
}

// logNormal draws n solve times with median 12 s and p90 30 s, the bench's distribution.
func logNormal(n int, seed int64) []time.Duration {
	draw := anysolvertest.LogNormal(12*time.Second, math.Log(30.0/12)/1.2816, seed)
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = draw()
	}
	return out
}

func TestPollFixed(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{Fixed: true, Interval: 2 * time.Second})
	for range 3 {
		simPoll(p, clock, "T", logNormal(100, 1))
	}
	require.Equal(t, 2*time.Second, p.firstDelay("T"))
	for _, elapsed := range []time.Duration{0, time.Second, time.Minute, 4 * time.Minute} {
		require.Equal(t, 2*time.Second, p.interval("T", elapsed), "elapsed %s", elapsed)
	}
	require.Empty(t, p.byType, "fixed polling learns nothing")
}

func TestPollDefaultsBeforeLearning(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	require.Equal(t, PollFirstDefault, p.firstDelay("RecaptchaV2TaskProxyless"))
	require.Equal(t, PollFirstImageDefault, p.firstDelay("ImageToTextTask"))
	require.Equal(t, PollIntervalDefault, p.interval("RecaptchaV2TaskProxyless", 10*time.Second))

	for i := range PollMinSamples - 1 {
		p.observe("T", 9*time.Second, 12*time.Second)
		clock.t = clock.t.Add(time.Duration(i) * time.Second)
	}
	require.Equal(t, PollFirstDefault, p.firstDelay("T"), "one solve short of learning")
	p.observe("T", 9*time.Second, 12*time.Second)
	require.NotEqual(t, PollFirstDefault, p.firstDelay("T"))
	require.Equal(t, PollFirstDefault, p.firstDelay("Other"), "each type learns on its own")
}

func TestPollLearnsQuantiles(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	// Solves of 1..200 s, each seen between two polls a second apart, spread out in time so
	// that each has long joined the window.
	for s := 1; s <= 200; s++ {
		clock.t = clock.t.Add(10 * time.Minute)
		p.observe("T", time.Duration(s)*time.Second-500*time.Millisecond, time.Duration(s)*time.Second+500*time.Millisecond)
	}
	clock.t = clock.t.Add(10 * time.Minute)
	q, ok := p.stats("T")
	require.True(t, ok)
	near := func(want, got time.Duration) {
		t.Helper()
		require.InDelta(t, want.Seconds(), got.Seconds(), 1.01, "want about %s, got %s", want, got)
	}
	near(80*time.Second, q.first) // the 40th percentile
	near(100*time.Second, q.median)
	near(150*time.Second, q.sparse)
	near(180*time.Second, q.q90)
	require.Equal(t, q.first, p.firstDelay("T"))
	require.Equal(t, PollIntervalDefault, p.interval("T", 30*time.Second), "median/7 is above Interval: capped")
	require.Equal(t, 290*time.Second/16, p.interval("T", 290*time.Second), "late: the poll budget's floor")
}

func TestPollIntervalFollowsTheMedian(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	for range 64 {
		clock.t = clock.t.Add(time.Minute)
		p.observe("T", 11*time.Second, 13*time.Second) // every solve took about 12 s
	}
	clock.t = clock.t.Add(time.Minute)
	dense, sparse := float64(12*time.Second)/pollDenseDivisor, float64(12*time.Second)/pollSparseDivisor
	require.Equal(t, time.Duration(dense), p.interval("T", 10*time.Second), "a seventh of the median")
	require.Equal(t, time.Duration(sparse), p.interval("T", 12500*time.Millisecond), "past the 75th percentile")
	require.Equal(t, 3*time.Second, p.interval("T", 24*time.Second), "the tail stretches a quarter of the time past p90")
	require.Equal(t, PollMaxIntervalDefault, p.interval("T", 100*time.Second), "up to MaxInterval")
}

// TestPollAlwaysReadyPollsAtOnce is the throughput case: a type whose tasks are ready at the
// first poll learns to poll at once within one batch after the cold start.
func TestPollAlwaysReadyPollsAtOnce(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	ready := make([]time.Duration, 100)
	simPoll(p, clock, "T", ready)
	require.Equal(t, time.Duration(0), p.firstDelay("T"))
	res := simPoll(p, clock, "T", ready)
	require.Equal(t, 1.0, res.pollsPerTask)
	require.Equal(t, time.Duration(0), res.latencyP50)
}

// TestPollFirstPollSharesTarget checks the first poll finds about PollFirstQuantile of the
// tasks ready, when learned on tasks ready at their first poll as well as later ones.
func TestPollFirstPollSharesTarget(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	for seed := int64(10); seed < 14; seed++ {
		simPoll(p, clock, "T", logNormal(200, seed))
	}
	first := p.firstDelay("T")
	ready := 0
	solves := logNormal(2000, 99)
	for _, s := range solves {
		if s <= first {
			ready++
		}
	}
	share := float64(ready) / float64(len(solves))
	require.InDelta(t, PollFirstQuantile, share, 0.12, "first poll at %s finds %.2f ready", first, share)
}

// TestPollBurstDoesNotSkewTheWindow: in a batch created together the fast tasks end first. They
// join the window only once the batch is a 90th-percentile solve time old, so the rest of the
// batch is polled on what was learned before, not on the batch's fast half.
func TestPollBurstDoesNotSkewTheWindow(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	simPoll(p, clock, "T", logNormal(250, 2))
	before, _ := p.stats("T")
	created := clock.t
	for _, s := range []time.Duration{4, 5, 6, 7, 8, 9} {
		clock.t = created.Add(s * time.Second)
		p.observe("T", 0, s*time.Second)
	}
	during, _ := p.stats("T")
	require.Equal(t, before, during, "six fast solves of a young batch change nothing yet")
	clock.t = created.Add(before.q90 + time.Second)
	after, _ := p.stats("T")
	require.NotEqual(t, before, after, "once the batch is old enough they count")
}

// TestPollRespectsMaxPollsWithin5Min walks the schedule for 5 minutes (the longest AnySolver
// keeps a task) for learned distributions from instant to slower than the 5 minutes, and
// configurations down to the smallest MinInterval: a task never needs more than MaxPollsPerTask.
func TestPollRespectsMaxPollsWithin5Min(t *testing.T) {
	t.Parallel()
	configs := map[string]PollConfig{
		"default":  {},
		"fastest":  {MinInterval: time.Nanosecond, Interval: 100 * time.Millisecond, MaxInterval: 100 * time.Millisecond},
		"slow cap": {Interval: 3 * time.Second, MaxInterval: time.Minute},
	}
	learned := map[string][]time.Duration{
		"instant":    make([]time.Duration, 64),
		"one second": repeat(time.Second, 64),
		"log-normal": logNormal(256, 3),
		"bimodal":    append(make([]time.Duration, 40), repeat(280*time.Second, 24)...),
		"too slow":   repeat(10*time.Minute, 64),
	}
	for cname, cfg := range configs {
		for lname, solves := range learned {
			p, clock := newSimPoller(cfg)
			for _, s := range solves {
				clock.t = clock.t.Add(20 * time.Minute)
				p.observe("T", max(s-time.Second, 0), s)
			}
			clock.t = clock.t.Add(20 * time.Minute)
			polls, at := 1, p.firstDelay("T")
			for at < 5*time.Minute {
				at += p.interval("T", at)
				polls++
			}
			require.LessOrEqual(t, polls, MaxPollsPerTask, "%s config, %s solves: %d polls in 5 minutes", cname, lname, polls)
		}
	}
}

// TestPollBeatsFixedOnLogNormal is the bench's polling section in virtual time: after a warm-up
// batch, adaptive polling spends fewer polls than a fixed 3 s interval on the same tasks
// without a worse median delay. The bench's own targets are tighter; this guards the shape.
func TestPollBeatsFixedOnLogNormal(t *testing.T) {
	t.Parallel()
	var adaptivePolls, fixedPolls float64
	var adaptiveLat, fixedLat time.Duration
	for seed := int64(1); seed <= 8; seed++ {
		fixed, fclock := newSimPoller(PollConfig{Fixed: true, Interval: 3 * time.Second})
		adaptive, aclock := newSimPoller(PollConfig{})
		simPoll(adaptive, aclock, "T", logNormal(250, 100+seed))
		measured := logNormal(500, seed)
		a := simPoll(adaptive, aclock, "T", measured)
		f := simPoll(fixed, fclock, "T", measured)
		require.LessOrEqual(t, a.maxPolls, MaxPollsPerTask)
		adaptivePolls += a.pollsPerTask
		fixedPolls += f.pollsPerTask
		adaptiveLat += a.latencyP50
		fixedLat += f.latencyP50
	}
	require.Less(t, adaptivePolls/fixedPolls, 0.9, "polls: adaptive %.2f, fixed %.2f", adaptivePolls/8, fixedPolls/8)
	require.Less(t, adaptiveLat, fixedLat*11/10, "p50 delay: adaptive %s, fixed %s", adaptiveLat/8, fixedLat/8)
}

func TestPollPendingIsBounded(t *testing.T) {
	t.Parallel()
	p, clock := newSimPoller(PollConfig{})
	for range PollMinSamples {
		clock.t = clock.t.Add(time.Hour)
		p.observe("T", 50*time.Second, 60*time.Second)
	}
	// A huge burst created together, ending within a second: none old enough to join.
	created := clock.t
	for i := range 10 * pollPendingMax {
		clock.t = created.Add(time.Duration(i) * 100 * time.Microsecond)
		p.observe("T", 0, clock.t.Sub(created))
	}
	st := p.byType["T"]
	require.Less(t, len(st.pending), pollPendingMax)
	require.Greater(t, st.keepEvery, 1)
	clock.t = created.Add(time.Hour)
	_, ok := p.stats("T")
	require.True(t, ok)
	require.Empty(t, st.pending, "all joined once old enough")
	require.Equal(t, 1, st.keepEvery)
}

func repeat(d time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for i := range out {
		out[i] = d
	}
	return out
}

// BenchmarkPollSchedule is the poller's cost per solved task on the hot path: the first
// delay, one interval and the observation, with the window refreshed as it changes.
func BenchmarkPollSchedule(b *testing.B) {
	p, clock := newSimPoller(PollConfig{})
	solves := logNormal(1024, 1)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s := solves[i%len(solves)]
		i++
		clock.t = clock.t.Add(10 * time.Millisecond)
		d := p.firstDelay("T")
		_ = p.interval("T", d)
		p.observe("T", s/2, s)
	}
}
