// Package polling is the bench's polling section: polls per solve and added latency of adaptive
// polling against a fixed interval.
package polling

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Adaptive polling against a fixed 3 s interval, on solve times drawn log-normal with median 12 s
// and p90 30 s. Two workers run side by side, each with its own fake: one adaptive, one fixed.
// The adaptive one first learns on a warm-up batch drawn with another seed (its poller keeps
// what it learned, as a running worker's does); then both get the same measured batch, drawn
// with the same seed. Polls per solve come from the jobs' records; the added latency of a job
// is from the moment its solution was ready at the fake (the fake's ReadyAt of its task) to the
// job's FinishedAt.
//
// The measured batch goes in rounds, both workers side by side in each (the same load falls on
// both at once, and each round's solve times are the same on both: the next slice of the one
// sequence each fake draws). A round lasts as long as its slowest solve, about five times the
// median, so the rounds are staggered a median apart instead of run one after another: they
// overlap, and each is measured on its own jobs. Polls per solve is the median of the rounds, its
// ratio to the fixed poller's the median of the per-round ratios; the latencies are quantiles of
// all the measured jobs.

const (
	pollMedian      = 12 * time.Second
	pollP90         = 30 * time.Second
	pollFixed       = 3 * time.Second
	pollWarmupSeed  = 2
	pollMeasureSeed = 1
	pollLimit       = 6 * time.Minute
	// warmupShare of a warm-up batch solved is enough to go on (Run).
	warmupShare = 0.95
)

// pollSigma is the log-normal spread that puts p90 at pollP90: ln(p90/median)/z(0.9).
var pollSigma = math.Log(float64(pollP90)/float64(pollMedian)) / 1.2816

// Run runs the polling section: adaptive polling against a fixed 3 s on the same solve times,
// and writes its figures to r.
func Run(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	scale := func(d time.Duration) time.Duration { return time.Duration(float64(d) * sz.PollScale) }
	median, fixed := scale(pollMedian), scale(pollFixed)
	adaptiveCfg := worker.PollConfig{}
	if sz.PollScale != 1 {
		adaptiveCfg = worker.PollConfig{Interval: scale(worker.PollIntervalDefault),
			MinInterval: scale(worker.PollMinIntervalDefault), MaxInterval: scale(worker.PollMaxIntervalDefault)}
	}
	r.Context.Sizes["polling_warmup_jobs"] = sz.PollWarmup
	r.Context.Sizes["polling_jobs"] = sz.PollJobs
	r.Context.PollingSetup = fmt.Sprintf("log-normal solve times, median %s, p90 %s (sigma %.3f); adaptive worker warmed up on %d×%d jobs (seed %d), "+
		"(each counted learnt at %.0f%% solved), then %d jobs (seed %d) through each worker side by side; fixed interval %s",
		median, scale(pollP90), pollSigma, sz.PollWarmupBatches, sz.PollWarmup, pollWarmupSeed, warmupShare*100, sz.PollJobs, pollMeasureSeed, fixed)

	adaptive, err := newPollRig(ctx, e, "adaptive", adaptiveCfg, median, pollWarmupSeed)
	if err != nil {
		return err
	}
	defer adaptive.Close()
	fixedRig, err := newPollRig(ctx, e, "fixed", worker.PollConfig{Fixed: true, Interval: fixed}, median, pollMeasureSeed)
	if err != nil {
		return err
	}
	defer fixedRig.Close()

	// At the quick run's tenth of the time scale, every task of a cold worker is ready at its
	// first poll (the cold first poll is at PollFirstDefault, 5 s, unscaled), which says only
	// "faster than 5 s": a second warm-up batch is what it learns from.
	//
	// A warm-up batch counts as learnt once warmupShare of its jobs are solved: its slowest
	// twentieth alone would double its time (a batch lasts as long as its slowest solve, about
	// eight medians for 250 draws against about three for the 95th percentile). They finish
	// while the measured rounds run, and the poller learns from them then, as a running worker
	// goes on learning; their polls are not the rounds'.
	for b := 1; b <= sz.PollWarmupBatches; b++ {
		began := time.Now()
		enough := int(math.Ceil(warmupShare * float64(sz.PollWarmup)))
		if _, err := adaptive.run(ctx, fmt.Sprintf("warm%d", b), sz.PollWarmup, enough); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
		e.Logf("bench: [polling] adaptive warm-up: %d of %d jobs solved in %s", enough, sz.PollWarmup, time.Since(began).Round(100*time.Millisecond))
	}
	adaptive.Fake.SetScript(logNormalScript(median, pollMeasureSeed))

	perRound := max(1, sz.PollJobs/sz.Rounds)
	r.Context.Sizes["polling_rounds"] = sz.Rounds
	var (
		wg       sync.WaitGroup
		results  = make([][2]pollResult, sz.Rounds)
		errs     = make([]error, 2*sz.Rounds)
		measured = time.Now()
		done     atomic.Int32
	)
	for round := range sz.Rounds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-ctx.Done():
				errs[2*round] = ctx.Err()
				return
			case <-time.After(time.Duration(round) * median):
			}
			var side sync.WaitGroup
			for i, pr := range []*pollRig{adaptive, fixedRig} {
				side.Add(1)
				go func() {
					defer side.Done()
					results[round][i], errs[2*round+i] = pr.run(ctx, fmt.Sprintf("round%d", round+1), perRound, perRound)
				}()
			}
			side.Wait()
			a, f := results[round][0], results[round][1]
			e.Logf("bench: [polling] round %d (%d/%d done) after %s: adaptive %.2f polls/solve, fixed %s %.2f",
				round+1, done.Add(1), sz.Rounds, time.Since(measured).Round(100*time.Millisecond), a.pollsPerSolve, fixed, f.pollsPerSolve)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	var (
		pollsA, pollsF []float64
		all            [2]pollResult
	)
	for _, res := range results {
		pollsA, pollsF = append(pollsA, res[0].pollsPerSolve), append(pollsF, res[1].pollsPerSolve)
		for i := range all {
			all[i].latencies = append(all[i].latencies, res[i].latencies...)
		}
	}
	a, f := all[0].withQuantiles(), all[1].withQuantiles()
	ratio := benchenv.RatioSpread(pollsA, pollsF)
	e.Logf("bench: [polling] %d rounds of %d jobs each in %s: adaptive %.2f polls/solve, added latency p50/mean/p90 %.0f/%.0f/%.0f ms; fixed %s %.2f polls/solve, %.0f/%.0f/%.0f ms",
		sz.Rounds, perRound, time.Since(measured).Round(100*time.Millisecond), benchenv.SpreadOf(pollsA).Median, a.latencyP50Ms, a.latencyMeanMs, a.latencyP90Ms,
		fixed, benchenv.SpreadOf(pollsF).Median, f.latencyP50Ms, f.latencyMeanMs, f.latencyP90Ms)
	r.PollsPerSolve = benchenv.SpreadOf(pollsA).Rounded(3)
	r.PollsPerSolveFixed3s = benchenv.SpreadOf(pollsF).Rounded(3)
	r.PollsPerSolveVsFixed, r.PollsPerSolveVsFixedMin, r.PollsPerSolveVsFixedMax = ratio.Ptrs(3)
	benchenv.RoundDetails(r.Context.Details, "polls_per_solve", pollsA, 3)
	benchenv.RoundDetails(r.Context.Details, "polls_per_solve_fixed3s", pollsF, 3)
	r.AddedLatencyP50Ms = benchenv.Ptr(benchenv.Round(a.latencyP50Ms, 0))
	r.AddedLatencyP50MsFixed3s = benchenv.Ptr(benchenv.Round(f.latencyP50Ms, 0))
	r.AddedLatencyMeanMs = benchenv.Ptr(benchenv.Round(a.latencyMeanMs, 0))
	r.AddedLatencyMeanMsFixed3 = benchenv.Ptr(benchenv.Round(f.latencyMeanMs, 0))
	r.AddedLatencyP90Ms = benchenv.Ptr(benchenv.Round(a.latencyP90Ms, 0))
	r.AddedLatencyP90MsFixed3s = benchenv.Ptr(benchenv.Round(f.latencyP90Ms, 0))
	return nil
}

// logNormalScript solves every task after a log-normal time, the same sequence for a seed.
func logNormalScript(median time.Duration, seed int64) func(anysolvertest.Task) anysolvertest.Behavior {
	draw := anysolvertest.LogNormal(median, pollSigma, seed)
	return func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{SolveTimeFunc: draw}
	}
}

// pollRig is a pipeline with its own fake and queue.
type pollRig struct {
	*rig.Pipeline
	e       *benchenv.Env
	name, q string
}

func newPollRig(ctx context.Context, e *benchenv.Env, name string, poll worker.PollConfig, median time.Duration, seed int64) (*pollRig, error) {
	pr := &pollRig{e: e, name: name, q: e.Queue("poll-" + name)}
	p, err := benchenv.StartPipeline(ctx, e, logNormalScript(median, seed), worker.Config{Queues: map[string]int{pr.q: 1},
		Poll: poll, Observer: worker.NewMetrics(prometheus.NewRegistry())})
	if err != nil {
		return nil, err
	}
	pr.Pipeline = p
	return pr, nil
}

type pollResult struct {
	pollsPerSolve                             float64
	latencies                                 []time.Duration // added latency of each job, sorted
	latencyP50Ms, latencyP90Ms, latencyMeanMs float64
}

// withQuantiles returns the result with its latency figures computed from its latencies.
func (p pollResult) withQuantiles() pollResult {
	slices.Sort(p.latencies)
	if len(p.latencies) == 0 {
		return p
	}
	var sum time.Duration
	for _, l := range p.latencies {
		sum += l
	}
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p.latencyP50Ms = ms(quantile(p.latencies, 0.5))
	p.latencyP90Ms = ms(quantile(p.latencies, 0.9))
	p.latencyMeanMs = ms(sum / time.Duration(len(p.latencies)))
	return p
}

// run submits n jobs, waits for enough of them to end (not for the queue: other rounds' jobs
// may share it) and measures polls and added latency of those. The others go on.
func (pr *pollRig) run(ctx context.Context, batch string, n, enough int) (pollResult, error) {
	jobs := benchenv.MakeJobs(pr.q, fmt.Sprintf("bench-poll-%s-%s-", pr.name, batch), n)
	results, err := pr.Producer.SubmitMany(ctx, jobs, benchenv.EnqueueConcurrency, nil)
	if err != nil {
		return pollResult{}, err
	}
	refs := make([]enqueue.JobRef, 0, n)
	for _, res := range results {
		if res.Err != nil {
			return pollResult{}, res.Err
		}
		refs = append(refs, enqueue.JobRef{ID: res.Submitted.ID, Queue: res.Submitted.Queue})
	}
	var (
		mu        sync.Mutex
		polls     int
		latencies []time.Duration
		problems  []string
	)
	waitCtx, cancel := context.WithTimeout(ctx, pollLimit)
	defer cancel()
	ended := 0
	err = pr.Producer.WaitMany(waitCtx, refs, 32, func(ref enqueue.JobRef, out enqueue.Outcome, err error) {
		mu.Lock()
		defer mu.Unlock()
		if ended >= enough {
			return // waited for no more: this one ended as the wait was called off
		}
		if ended++; ended == enough {
			cancel()
		}
		if err == nil && out.State != enqueue.StateSolved {
			err = fmt.Errorf("ended %s", out.State)
		}
		if err != nil {
			problems = append(problems, ref.ID+": "+err.Error())
			return
		}
		polls += out.Polls
		ready, ok := pr.readyAt(out.Solution)
		if !ok {
			problems = append(problems, ref.ID+": the fake does not know its task")
			return
		}
		latencies = append(latencies, out.FinishedAt.Sub(ready))
	})
	if err != nil && !(ended >= enough && errors.Is(err, context.Canceled)) {
		return pollResult{}, fmt.Errorf("%s %s: wait for the outcomes: %w", pr.name, batch, err)
	}
	if len(problems) > 0 {
		return pollResult{}, fmt.Errorf("%s %s: %d jobs not measured, e.g. %s", pr.name, batch, len(problems), problems[0])
	}
	return pollResult{pollsPerSolve: float64(polls) / float64(len(latencies)), latencies: latencies}.withQuantiles(), nil
}

// readyAt finds when the fake had the solution ready: the fake's token names its task.
func (pr *pollRig) readyAt(solution json.RawMessage) (time.Time, bool) {
	var sol struct {
		Token string `json:"token"`
	}
	if json.Unmarshal(solution, &sol) != nil {
		return time.Time{}, false
	}
	id, ok := strings.CutPrefix(sol.Token, "fake-token-")
	if !ok {
		return time.Time{}, false
	}
	return pr.Fake.ReadyAt(id)
}

// quantile is the q-quantile of sorted (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(math.Round(float64(len(sorted)-1)*q))]
}
