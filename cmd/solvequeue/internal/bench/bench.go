// Package bench is `solvequeue bench`: solvequeue's figures measured side by side with their
// baselines, in one process, on one Redis, against the fake AnySolver over loopback HTTP.
// It owns the workloads and the measuring; the pipeline it measures is the product's own
// (enqueue, worker), wired exactly as the CLI wires it.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strings"
	"time"
)

// Sections, in the order they run.
const (
	SectionThroughput = "throughput" // floor, naive, e2e
	SectionInflight   = "inflight"
	SectionPolling    = "polling"
	SectionSubmit     = "submit"
	SectionSpend      = "spend"
	SectionGateway    = "gateway" // gateway.go
	SectionCluster    = "cluster" // cluster.go
)

// Sections lists every section in running order.
var Sections = []string{SectionThroughput, SectionInflight, SectionPolling, SectionSubmit, SectionSpend, SectionGateway, SectionCluster}

// Options configure a run.
type Options struct {
	// RedisURL is the Redis to run on; "" starts a throwaway redis-server on a free loopback port.
	// On a Redis of one's own the bench uses queues named "bench-..." and deletes them afterwards;
	// on its own server it flushes the database between sections.
	RedisURL string
	// Quick runs every section at a small size (and the polling section on a tenth of the time
	// scale), for trying the bench and for tests. Its figures are not the issue's.
	Quick bool
	// Only runs these sections (names from Sections); empty runs all.
	Only []string
	// Binary is the solvequeue executable the in-flight section runs as its worker process.
	// Defaults to os.Executable().
	Binary string
	// Progress receives one line per step. Defaults to io.Discard.
	Progress io.Writer
}

// Validate checks the options and names what is wrong.
func (o Options) Validate() error {
	for _, s := range o.Only {
		if !slices.Contains(Sections, s) {
			return fmt.Errorf("unknown section %q (want one of %s)", s, strings.Join(Sections, ", "))
		}
	}
	return nil
}

func (o Options) runs(section string) bool {
	return len(o.Only) == 0 || slices.Contains(o.Only, section)
}

// Report is the outcome of a run: the keys, then context. A figure of a section that
// did not run is null.
type Report struct {
	FloorJobsPerS     *float64 `json:"floor_jobs_per_s"`
	NaiveJobsPerS     *float64 `json:"naive_jobs_per_s"`
	E2EJobsPerS       *float64 `json:"e2e_jobs_per_s"`
	E2EVsNaive        *float64 `json:"e2e_vs_naive"`
	E2EVsFloor        *float64 `json:"e2e_vs_floor"`
	InflightJobs      *float64 `json:"inflight_jobs"`
	InflightSolveS    *float64 `json:"inflight_solve_s"`
	InflightWallS     *float64 `json:"inflight_wall_s"`
	InflightPeakRSSMB *float64 `json:"inflight_peak_rss_mb"`
	// InflightFloorRSSMB is plain asynq's peak RSS holding the same jobs in flight (floor.go);
	// the wall time and the ratio are in the details (inflight_floor_wall_s, inflight_rss_vs_floor).
	InflightFloorRSSMB       *float64 `json:"inflight_floor_rss_mb"`
	PollsPerSolve            *float64 `json:"polls_per_solve"`
	PollsPerSolveFixed3s     *float64 `json:"polls_per_solve_fixed3s"`
	AddedLatencyP50Ms        *float64 `json:"added_latency_p50_ms"`
	AddedLatencyP50MsFixed3s *float64 `json:"added_latency_p50_ms_fixed3s"`
	AddedLatencyMeanMs       *float64 `json:"added_latency_mean_ms"`
	AddedLatencyMeanMsFixed3 *float64 `json:"added_latency_mean_ms_fixed3s"`
	AddedLatencyP90Ms        *float64 `json:"added_latency_p90_ms"`
	AddedLatencyP90MsFixed3s *float64 `json:"added_latency_p90_ms_fixed3s"`
	SubmitJobsPerS           *float64 `json:"submit_jobs_per_s"`
	SequentialSubmitJobsPerS *float64 `json:"sequential_submit_jobs_per_s"`
	SubmitVsSequential       *float64 `json:"submit_vs_sequential"`
	CreatesPerJobMix         *float64 `json:"creates_per_job_mix"`
	CreatesPerJobMixRetryAll *float64 `json:"creates_per_job_mix_retry_all"`
	// throughput.go: the same e2e run on a queue with a spend cap (every createTask reserved and
	// settled on the shared ledger), against the e2e run without one, in the same rounds.
	BudgetE2EJobsPerS *float64 `json:"budget_e2e_jobs_per_s"`
	BudgetE2EVsPlain  *float64 `json:"budget_e2e_vs_plain"`
	// gateway.go
	GatewayCreateVsSubmit     *float64 `json:"gateway_create_vs_submit"`
	GatewayResultVsStatus     *float64 `json:"gateway_result_vs_status"`
	GatewayCreateTasksPerS    *float64 `json:"gateway_create_tasks_per_s"`
	Submit64JobsPerS          *float64 `json:"submit_64_goroutines_jobs_per_s"`
	GatewayGetTaskResultsPerS *float64 `json:"gateway_get_task_results_per_s"`
	StatusPerS                *float64 `json:"status_per_s"`

	Context Context `json:"context"`
}

// Context says what the figures were measured on and how.
type Context struct {
	Machine      string             `json:"machine"`
	CPUs         int                `json:"cpus"`
	GoVersion    string             `json:"go_version"`
	Redis        string             `json:"redis"`
	Quick        bool               `json:"quick"`
	StartedAt    time.Time          `json:"started_at"`
	DurationS    float64            `json:"duration_s"`
	SectionS     map[string]float64 `json:"section_s"`
	Sizes        map[string]int     `json:"sizes"`
	Details      map[string]float64 `json:"details"`
	Notes        []string           `json:"notes"`
	InflightRSS  string             `json:"inflight_rss_method,omitempty"`
	PollingSetup string             `json:"polling_setup,omitempty"`
}

// sizes are the workloads of a run.
type sizes struct {
	throughputJobs, throughputConcurrency, e2eWarmup int
	inflightJobs, inflightConcurrency                int
	inflightSolve                                    time.Duration
	pollWarmup, pollWarmupBatches, pollJobs          int
	pollScale                                        float64 // 1 for the time scale
	submitJobs, sequentialJobs, submitConcurrency    int
	mixJobs                                          int
	mixBackoff                                       [2]time.Duration // base, max
	gatewayJobs                                      int
}

func sizesFor(quick bool) sizes {
	if quick {
		return sizes{throughputJobs: 400, throughputConcurrency: 100, e2eWarmup: 100,
			inflightJobs: 200, inflightConcurrency: 10_000, inflightSolve: 2 * time.Second,
			pollWarmup: 60, pollWarmupBatches: 2, pollJobs: 100, pollScale: 0.1,
			submitJobs: 2_000, sequentialJobs: 500, submitConcurrency: enqueueConcurrency,
			mixJobs: 100, mixBackoff: [2]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, gatewayJobs: 1_000}
	}
	return sizes{throughputJobs: 20_000, throughputConcurrency: 100, e2eWarmup: 1_000,
		inflightJobs: 10_000, inflightConcurrency: 10_000, inflightSolve: 20 * time.Second,
		pollWarmup: 250, pollWarmupBatches: 1, pollJobs: 500, pollScale: 1,
		submitJobs: 100_000, sequentialJobs: 10_000, submitConcurrency: enqueueConcurrency,
		mixJobs: 1_000, mixBackoff: [2]time.Duration{100 * time.Millisecond, 500 * time.Millisecond}, gatewayJobs: 20_000}
}

// Run runs the bench and returns its report.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Binary == "" && o.runs(SectionInflight) {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the solvequeue binary for the in-flight worker: %w", err)
		}
		o.Binary = exe
	}
	started := time.Now()
	sz := sizesFor(o.Quick)
	r := &Report{Context: Context{
		Machine: machine(), CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), Quick: o.Quick,
		StartedAt: started.UTC().Truncate(time.Second), SectionS: map[string]float64{},
		Sizes: map[string]int{}, Details: map[string]float64{},
	}}
	e, err := newEnv(ctx, o)
	if err != nil {
		return nil, err
	}
	defer e.close()
	r.Context.Redis = e.redisDesc
	e.logf("bench: %s on %s, %s", map[bool]string{true: "quick run", false: "full run"}[o.Quick], r.Context.Machine, e.redisDesc)

	steps := []struct {
		name string
		run  func(context.Context, *env, sizes, *Report) error
	}{
		{SectionThroughput, runThroughput},
		{SectionInflight, runInflight},
		{SectionPolling, runPolling},
		{SectionSubmit, runSubmit},
		{SectionSpend, runSpend},
		{SectionGateway, runGateway},
		{SectionCluster, runCluster},
	}
	for _, s := range steps {
		if !o.runs(s.name) {
			continue
		}
		if err := e.reset(ctx); err != nil {
			return nil, err
		}
		began := time.Now()
		e.logf("bench: [%s] starting", s.name)
		if err := s.run(ctx, e, sz, r); err != nil {
			return nil, fmt.Errorf("bench %s: %w", s.name, err)
		}
		r.Context.SectionS[s.name] = round(time.Since(began).Seconds(), 1)
		e.logf("bench: [%s] done in %s", s.name, time.Since(began).Round(100*time.Millisecond))
	}
	if err := e.reset(ctx); err != nil && !errors.Is(err, context.Canceled) {
		e.logf("bench: cleaning up: %v", err)
	}
	for k, v := range e.details {
		r.Context.Details[k] = v
	}
	r.Context.DurationS = round(time.Since(started).Seconds(), 1)
	return r, nil
}

// machine describes the host: OS, architecture and CPU model.
func machine() string {
	m := runtime.GOOS + "/" + runtime.GOARCH
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if name, ok := strings.CutPrefix(line, "model name"); ok {
				m += ", " + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%s, %d CPUs", m, runtime.NumCPU())
}

func ptr(v float64) *float64 { return &v }

func round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

func ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	return ptr(round(a/b, 3))
}
