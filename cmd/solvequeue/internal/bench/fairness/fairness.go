// Package fairness is the bench's gateway_fairness section: how much a noisy gateway key's burst
// slows a quiet key's jobs on the same queue, through the gateway over loopback HTTP, with the
// worker in process and the fake AnySolver solving every task in a fixed time.
package fairness

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// The section's shape: a worker of concurrency slots, every task solved in solveTime; the noisy
// key sends burstPerSlot jobs a slot, then the quiet key quietJobs jobs, all behind the burst,
// each timed from its createTask to getTaskResult's "ready". The same quiet jobs alone, before the
// burst, are the baseline; the figure is the median with the burst over the median alone.
const (
	burstPerSlot = 2
	quietJobs    = 3
	resultEvery  = 50 * time.Millisecond // how often the scraper asks getTaskResult
)

// The keys of the section's gateway.
const (
	noisyKey = "bench-fairness-noisy-7a1c"
	quietKey = "bench-fairness-quiet-3e9d"
)

// Run runs the section and writes gateway_fairness to r.
func Run(ctx context.Context, e *benchenv.Env, sz benchenv.Sizes, r *benchenv.Report) error {
	// Concurrencies large enough that the reserve (a tenth of the slots) holds the quiet key's
	// jobs, as the default concurrency of 1000 (a reserve of 100) does.
	concurrency, solveTime := 50, 2*time.Second
	if r.Context.Quick {
		concurrency, solveTime = 30, 500*time.Millisecond
	}
	r.Context.Sizes["fairness_concurrency"] = concurrency
	r.Context.Sizes["fairness_burst"] = burstPerSlot * concurrency
	q := e.Queue("fairness")
	p, err := benchenv.StartPipeline(ctx, e, func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{SolveTime: solveTime}
	}, worker.Config{Queues: map[string]int{q: 1}, Concurrency: concurrency,
		Poll: worker.PollConfig{Fixed: true, Interval: 50 * time.Millisecond}})
	if err != nil {
		return err
	}
	defer func() { _ = p.Close() }()

	addr, stop, err := e.StartGateway(ctx, 16, fmt.Sprintf("keys: [{name: noisy, key: %s, queue: %s}, {name: quiet, key: %s, queue: %s}]",
		noisyKey, q, quietKey, q))
	if err != nil {
		return err
	}
	defer stop()
	s := &scraper{base: "http://" + addr, http: &http.Client{Timeout: 30 * time.Second}}

	burst := burstPerSlot * concurrency
	crowdedRun := func(ctx context.Context, round int) (float64, error) {
		for i := range burst {
			if _, err := s.create(ctx, noisyKey, fmt.Sprintf("bench-fair-noisy-%d-%d", round, i)); err != nil {
				return 0, err
			}
		}
		took, err := s.quietRun(ctx, fmt.Sprintf("crowded-%d", round))
		if err != nil {
			return 0, err
		}
		if _, err := e.WaitDrained(ctx, q, 200*time.Millisecond, 5*time.Minute, nil); err != nil {
			return 0, fmt.Errorf("wait for the noisy burst: %w", err)
		}
		return took.Seconds(), nil
	}
	aloneRun := func(ctx context.Context, round int) (float64, error) {
		took, err := s.quietRun(ctx, fmt.Sprintf("alone-%d", round))
		return took.Seconds(), err
	}
	figures, err := e.Alternate(ctx, benchenv.RoundsConfig{Section: "fairness", Warmup: sz.WarmupRounds, Measured: sz.Rounds},
		benchenv.Side{Name: "alone", Run: aloneRun}, benchenv.Side{Name: "crowded", Run: crowdedRun})
	if err != nil {
		return err
	}
	alone, crowded := benchenv.SpreadOf(figures[0]), benchenv.SpreadOf(figures[1])
	ratio := benchenv.RatioSpread(figures[1], figures[0])
	r.GatewayFairness, r.GatewayFairnessMin, r.GatewayFairnessMax = ratio.Ptrs(3)
	e.Logf("bench: [fairness] quiet key's solve %.3fs alone, %.3fs beside a burst of %d from a noisy key (%.2f); concurrency %d, solve time %s",
		alone.Median, crowded.Median, burst, ratio.Median, concurrency, solveTime)
	r.Context.Details["fairness_quiet_alone_ms"] = benchenv.Round0(alone.Median * 1000)
	r.Context.Details["fairness_quiet_crowded_ms"] = benchenv.Round0(crowded.Median * 1000)
	r.Context.Notes = append(r.Context.Notes, fmt.Sprintf("gateway_fairness: a quiet key's median time from createTask to ready "+
		"(%d jobs sent together, through the gateway over loopback HTTP) right after a noisy key's burst of %d on the same "+
		"queue, over the same alone, in alternating rounds (the median of the per-round ratios); one worker of concurrency %d in process, the fake solving every task in %s", quietJobs, burst,
		concurrency, solveTime))
	return nil
}

// scraper is a client of the gateway, as a scraper's captcha library is: createTask, then
// getTaskResult until ready.
type scraper struct {
	base string
	http *http.Client
}

// quietRun sends quietJobs jobs of the quiet key at once, then asks for each result until it is
// ready, and returns their median time from createTask to ready.
func (s *scraper) quietRun(ctx context.Context, name string) (time.Duration, error) {
	ids := make([]int64, quietJobs)
	sent := make([]time.Time, quietJobs)
	for i := range quietJobs {
		sent[i] = time.Now()
		id, err := s.create(ctx, quietKey, fmt.Sprintf("bench-fair-quiet-%s-%d", name, i))
		if err != nil {
			return 0, err
		}
		ids[i] = id
	}
	took := make([]time.Duration, quietJobs)
	err := benchenv.Parallel(ctx, quietJobs, quietJobs, func(i int) error {
		if err := s.waitReady(ctx, ids[i]); err != nil {
			return err
		}
		took[i] = time.Since(sent[i])
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.Sort(took)
	return took[len(took)/2], nil
}

func (s *scraper) create(ctx context.Context, key, websiteKey string) (int64, error) {
	a, err := s.call(ctx, gateway.MethodCreateTask, map[string]any{"clientKey": key, "task": benchenv.Job("", websiteKey).Task})
	if err == nil && (a.ErrorID != 0 || a.TaskID <= 0) {
		err = fmt.Errorf("createTask answered %+v", a)
	}
	return a.TaskID, err
}

func (s *scraper) waitReady(ctx context.Context, id int64) error {
	t := time.NewTicker(resultEvery)
	defer t.Stop()
	for {
		a, err := s.call(ctx, gateway.MethodGetTaskResult, map[string]any{"clientKey": quietKey, "taskId": id})
		switch {
		case err != nil:
			return err
		case a.ErrorID != 0:
			return fmt.Errorf("getTaskResult answered %+v", a)
		case a.Status == gateway.StatusReady:
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func (s *scraper) call(ctx context.Context, method string, body map[string]any) (gateway.Answer, error) {
	data, err := json.Marshal(body)
	if err != nil {
		return gateway.Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+"/"+method, bytes.NewReader(data))
	if err != nil {
		return gateway.Answer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return gateway.Answer{}, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	var a gateway.Answer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return gateway.Answer{}, fmt.Errorf("%s: %w", method, err)
	}
	return a, nil
}
