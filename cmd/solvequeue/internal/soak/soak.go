// Package soak runs solvequeue for a long time under a steady, mixed load with faults from the
// fake AnySolver, and samples what must stay flat: the process's memory, goroutines and open
// connections, and Redis's memory. It owns the load, the fault mix, the sampling and the
// verdict; the worker, the producer and the fake are the real ones, wired by package rig.
package soak

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/clilog"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Defaults of Options.
const (
	DurationDefault = 10 * time.Minute
	IntervalDefault = time.Minute
	RateDefault     = 20.0
	// Queue is the queue the soak uses, on its own Redis or on one given.
	Queue = "soak"
	// Retention keeps finished jobs only briefly, so that Redis holds a steady window of them
	// rather than every job of the run.
	Retention = time.Minute
	// BlipEvery and BlipFor make AnySolver answer 503 for a few seconds every few minutes.
	BlipEvery = 2 * time.Minute
	BlipFor   = 5 * time.Second
	// drainTimeout bounds the wait for the last jobs once submitting stops.
	drainTimeout = 3 * time.Minute
	// keys bounds the websiteKeys used, so the fake's per-key counters stay bounded too.
	keys = 1000
)

// Options configure a soak run. The zero value of each field means its default.
type Options struct {
	// Duration is how long jobs are submitted. Defaults to DurationDefault.
	Duration time.Duration
	// Interval is the time between two samples. Defaults to IntervalDefault.
	Interval time.Duration
	// Rate is the jobs submitted per second. Defaults to RateDefault.
	Rate float64
	// RedisURL is the Redis to run on; "" starts a redis-server of its own.
	RedisURL string
	// Concurrency is the worker's. Defaults to worker.ConcurrencyDefault.
	Concurrency int
	// Progress receives a line per sample as the run goes. Defaults to none.
	Progress io.Writer
	// Log receives the worker's warnings and errors. Defaults to none.
	Log io.Writer
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	if o.Duration <= 0 {
		o.Duration = DurationDefault
	}
	if o.Interval <= 0 {
		o.Interval = IntervalDefault
	}
	if o.Rate <= 0 {
		o.Rate = RateDefault
	}
	if o.Concurrency <= 0 {
		o.Concurrency = worker.ConcurrencyDefault
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	return o
}

// Validate says what is wrong with o, after defaults.
func (o Options) Validate() error {
	o = o.WithDefaults()
	switch {
	case o.Interval*2 > o.Duration:
		return fmt.Errorf("the duration (%s) must hold at least two intervals (%s): the verdict compares the first and the last sample under load", o.Duration, o.Interval)
	case o.Rate > 2000:
		return fmt.Errorf("the rate must be at most 2000 jobs/s, got %g", o.Rate)
	}
	return nil
}

// Sample is what the soak measured at one moment.
type Sample struct {
	At          time.Duration `json:"-"`
	AtSeconds   float64       `json:"atSeconds"`
	Phase       string        `json:"phase"` // "start" (no load yet), "load", or "drained" (submitting stopped, every job ended)
	RSSBytes    int64         `json:"rssBytes"`
	HeapBytes   uint64        `json:"heapBytes"`
	Goroutines  int           `json:"goroutines"`
	Sockets     int           `json:"sockets"` // open sockets of this process: Redis, AnySolver, the fake's side
	RedisMemory int64         `json:"redisUsedMemory"`
	Submitted   int64         `json:"submitted"`
	Ended       int64         `json:"ended"`
}

// Totals count the jobs of a run.
type Totals struct {
	Submitted     int64   `json:"submitted"`
	Solved        int64   `json:"solved"`
	Failed        int64   `json:"failed"`
	Dead          int64   `json:"dead"`
	Lost          int64   `json:"lost"` // submitted, never ended within the drain
	CreateTasks   int64   `json:"createTasks"`
	CreatesPerJob float64 `json:"createTasksPerJob"`
	Blips         int     `json:"anysolverOutages"`
}

// Check is one part of the verdict: a figure at the warm baseline and at the end.
type Check struct {
	Name     string  `json:"name"`
	Baseline float64 `json:"baseline"`
	Final    float64 `json:"final"`
	Limit    float64 `json:"limit"`
	OK       bool    `json:"ok"`
}

// Report is a soak run's outcome.
type Report struct {
	Options     Options  `json:"-"`
	Duration    string   `json:"duration"`
	Interval    string   `json:"interval"`
	Rate        float64  `json:"rate"`
	Concurrency int      `json:"concurrency"`
	Redis       string   `json:"redis"`
	Samples     []Sample `json:"samples"`
	Totals      Totals   `json:"totals"`
	Checks      []Check  `json:"checks"`
	Flat        bool     `json:"flat"`
}

// ErrNotFlat is returned (wrapped) by Run when a figure grew past its limit or a job was lost.
var ErrNotFlat = errors.New("soak: not flat")

// Run soaks solvequeue for o.Duration and returns the samples and the verdict. The report is
// returned with an error wrapping ErrNotFlat when the verdict is not flat.
func Run(ctx context.Context, o Options) (*Report, error) {
	o = o.WithDefaults()
	if err := o.Validate(); err != nil {
		return nil, err
	}
	r := &Report{Options: o, Duration: o.Duration.String(), Interval: o.Interval.String(), Rate: o.Rate, Concurrency: o.Concurrency}
	red, err := rig.OpenRedis(ctx, rig.RedisOptions{URL: o.RedisURL})
	if err != nil {
		return nil, fmt.Errorf("soak: %w", err)
	}
	defer red.Close()
	r.Redis = red.Where

	counts := &counter{}
	p, err := rig.New(ctx, red, rig.Options{
		Fake:   anysolvertest.Options{Script: faultMix(1), Balance: 1e9},
		APIKey: "soak-key",
		Worker: worker.Config{Queues: map[string]int{Queue: 1}, Concurrency: o.Concurrency,
			ShutdownTimeout: 5 * time.Second, Observer: counts,
			Logger: clilog.New(o.Log, clilog.Text, slog.LevelWarn)},
		Producer: enqueue.Config{Retention: Retention},
	})
	if err != nil {
		return nil, err
	}
	defer p.Close()

	start := time.Now()
	sample := func(phase string) Sample {
		s := measure(ctx, red.Client)
		s.At, s.Phase = time.Since(start).Round(time.Second), phase
		s.AtSeconds = s.At.Seconds()
		s.Submitted, s.Ended = counts.submitted.Load(), counts.ended()
		r.Samples = append(r.Samples, s)
		writeSampleLine(o.Progress, s)
		return s
	}
	fmt.Fprintf(o.Progress, "soak: %s at %g jobs/s on %s, sampling every %s; AnySolver fails %s every %s\n",
		o.Duration, o.Rate, red.Where, o.Interval, BlipFor, BlipEvery)
	writeSampleHeader(o.Progress)
	sample("start")

	if err := p.Start(ctx); err != nil {
		return nil, err
	}
	loadCtx, stopLoad := context.WithTimeout(ctx, o.Duration)
	defer stopLoad()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); submit(loadCtx, p.Producer, o.Rate, counts) }()
	go func() { defer wg.Done(); r.Totals.Blips = blips(loadCtx, p.Fake.Server) }()

	tick := time.NewTicker(o.Interval)
	defer tick.Stop()
sampling:
	for {
		select {
		case <-loadCtx.Done():
			break sampling
		case <-tick.C:
			sample("load")
		}
	}
	wg.Wait()
	if ctx.Err() != nil {
		return r, ctx.Err()
	}
	// Let the jobs in flight end, then take the last sample.
	drained := time.Now().Add(drainTimeout)
	for counts.ended() < counts.submitted.Load() && time.Now().Before(drained) && ctx.Err() == nil {
		time.Sleep(200 * time.Millisecond)
	}
	sample("drained")
	r.Totals = counts.totals(r.Totals.Blips)
	r.verdict()
	if !r.Flat {
		return r, fmt.Errorf("%w: %s", ErrNotFlat, r.failedChecks())
	}
	return r, nil
}

// verdict compares the first half of the samples taken under load with the second half, each
// by its highest value: a leak makes the second half higher, while the noise of the jobs in
// flight and of a garbage collector that does not run on the minute stays within the limits:
// 25% more plus a little for RSS, goroutines, sockets and Redis memory. No job may be lost.
func (r *Report) verdict() {
	var loaded []Sample
	for _, s := range r.Samples {
		if s.Phase == "load" {
			loaded = append(loaded, s)
		}
	}
	if len(loaded) < 2 {
		loaded = r.Samples
	}
	first, second := loaded[:len(loaded)/2], loaded[len(loaded)/2:]
	peak := func(samples []Sample, f func(Sample) float64) float64 {
		m := f(samples[0])
		for _, s := range samples[1:] {
			m = max(m, f(s))
		}
		return m
	}
	check := func(name string, f func(Sample) float64, slack float64) {
		b, l := peak(first, f), peak(second, f)
		limit := b*1.25 + slack
		r.Checks = append(r.Checks, Check{Name: name, Baseline: b, Final: l, Limit: limit, OK: l <= limit})
	}
	check("rss_mb", func(s Sample) float64 { return mb(s.RSSBytes) }, 16)
	check("goroutines", func(s Sample) float64 { return float64(s.Goroutines) }, 50)
	check("sockets", func(s Sample) float64 { return float64(s.Sockets) }, 32)
	check("redis_mb", func(s Sample) float64 { return mb(s.RedisMemory) }, 4)
	r.Checks = append(r.Checks, Check{Name: "jobs_lost", Final: float64(r.Totals.Lost), OK: r.Totals.Lost == 0})
	r.Flat = true
	for _, c := range r.Checks {
		r.Flat = r.Flat && c.OK
	}
}

func (r *Report) failedChecks() string {
	var parts []string
	for _, c := range r.Checks {
		if !c.OK {
			parts = append(parts, fmt.Sprintf("%s went from %.1f to %.1f (limit %.1f)", c.Name, c.Baseline, c.Final, c.Limit))
		}
	}
	return strings.Join(parts, "; ")
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

// faultMix is the soak's AnySolver: per createTask call, about one in eight meets a fault
// (retried, throttled or re-created) and one in fifty is failed for good; solve times are
// log-normal around 3 s. Nothing is dead: dead letters are kept until an operator acts, so
// they would grow Redis by design.
func faultMix(seed uint64) func(anysolvertest.Task) anysolvertest.Behavior {
	var mu sync.Mutex
	rng := rand.New(rand.NewPCG(seed, 0x50a6))
	solve := anysolvertest.LogNormal(3*time.Second, 0.5, int64(seed))
	return func(t anysolvertest.Task) anysolvertest.Behavior {
		mu.Lock()
		p := rng.Float64()
		mu.Unlock()
		b := anysolvertest.Behavior{SolveTimeFunc: solve}
		switch {
		case p < 0.04:
			b.CreateError = "SERVICE_UNAVAILABLE"
		case p < 0.06:
			b.CreateError = "RATE_LIMITED"
		case p < 0.07:
			b.CreateHTTP = anysolvertest.FaultHTML502
		case p < 0.08:
			b.CreateHTTP = anysolvertest.FaultReset
		case p < 0.09:
			b.CreateHTTP = anysolvertest.FaultGarbage
		case p < 0.10:
			b.CreateHTTP = anysolvertest.FaultTruncated
		case p < 0.12:
			b.PollFailed = "CAPTCHA_UNSOLVABLE"
		case p < 0.14:
			b.CreateError = "DOMAIN_BANNED"
		}
		return b
	}
}

// submit puts rate jobs a second on the soak queue until ctx ends.
func submit(ctx context.Context, producer *enqueue.Client, rate float64, counts *counter) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		job := enqueue.Job{ID: fmt.Sprintf("soak-%s-%d", run, n), Queue: Queue, Task: map[string]any{
			"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://soak.example/login",
			"websiteKey": fmt.Sprintf("soak-site-key-%d", n%keys)}}
		if _, err := producer.Submit(ctx, job); err == nil {
			counts.submitted.Add(1)
		}
	}
}

// blips makes AnySolver answer 503 for BlipFor every BlipEvery until ctx ends.
func blips(ctx context.Context, fake *anysolvertest.Server) int {
	t := time.NewTicker(BlipEvery)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			fake.SetOutage(anysolvertest.FaultNone, time.Time{})
			return n
		case <-t.C:
			fake.SetOutage(anysolvertest.FaultHTTP503, time.Now().Add(BlipFor))
			n++
		}
	}
}

// counter is the worker's Observer for the soak: it counts outcomes and createTask calls.
type counter struct {
	worker.NopObserver
	submitted, solved, failed, dead, creates atomic.Int64
}

func (c *counter) ended() int64 { return c.solved.Load() + c.failed.Load() + c.dead.Load() }

func (c *counter) JobEnded(e worker.JobEnd) {
	switch e.State {
	case enqueue.StateSolved:
		c.solved.Add(1)
	case enqueue.StateFailed:
		c.failed.Add(1)
	default:
		c.dead.Add(1)
	}
	c.creates.Add(int64(e.CreateTasks))
}

func (c *counter) totals(blips int) Totals {
	t := Totals{Submitted: c.submitted.Load(), Solved: c.solved.Load(), Failed: c.failed.Load(), Dead: c.dead.Load(),
		CreateTasks: c.creates.Load(), Blips: blips}
	t.Lost = max(0, t.Submitted-c.ended())
	if ended := c.ended(); ended > 0 {
		t.CreatesPerJob = float64(t.CreateTasks) / float64(ended)
	}
	return t
}
