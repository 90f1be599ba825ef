package benchenv

import "time"

// Report is the outcome of a run: the keys, then context. A figure of a section that
// did not run is null. Each side of a comparison runs in alternating rounds (rounds.go): a rate
// is the median of its rounds, a ratio X the median of the per-round ratios, with the lowest
// and highest round beside it as X_min and X_max.
type Report struct {
	FloorJobsPerS     *float64 `json:"floor_jobs_per_s"`
	NaiveJobsPerS     *float64 `json:"naive_jobs_per_s"`
	E2EJobsPerS       *float64 `json:"e2e_jobs_per_s"`
	E2EVsNaive        *float64 `json:"e2e_vs_naive"`
	E2EVsNaiveMin     *float64 `json:"e2e_vs_naive_min"`
	E2EVsNaiveMax     *float64 `json:"e2e_vs_naive_max"`
	E2EVsFloor        *float64 `json:"e2e_vs_floor"`
	E2EVsFloorMin     *float64 `json:"e2e_vs_floor_min"`
	E2EVsFloorMax     *float64 `json:"e2e_vs_floor_max"`
	InflightJobs      *float64 `json:"inflight_jobs"`
	InflightSolveS    *float64 `json:"inflight_solve_s"`
	InflightWallS     *float64 `json:"inflight_wall_s"`
	InflightPeakRSSMB *float64 `json:"inflight_peak_rss_mb"`
	// InflightFloorRSSMB is plain asynq's peak RSS holding the same jobs in flight (package inflight, floor.go);
	// its wall time is in the details (inflight_floor_wall_s); inflight_rss_vs_floor is the worker's peak
	// over the floor's and polls_per_solve_vs_fixed3s adaptive polling's polls over the fixed poller's
	// (both: lower is better).
	InflightFloorRSSMB       *float64 `json:"inflight_floor_rss_mb"`
	InflightRSSVsFloor       *float64 `json:"inflight_rss_vs_floor"`
	InflightRSSVsFloorMin    *float64 `json:"inflight_rss_vs_floor_min"`
	InflightRSSVsFloorMax    *float64 `json:"inflight_rss_vs_floor_max"`
	PollsPerSolve            *float64 `json:"polls_per_solve"`
	PollsPerSolveFixed3s     *float64 `json:"polls_per_solve_fixed3s"`
	PollsPerSolveVsFixed     *float64 `json:"polls_per_solve_vs_fixed3s"`
	PollsPerSolveVsFixedMin  *float64 `json:"polls_per_solve_vs_fixed3s_min"`
	PollsPerSolveVsFixedMax  *float64 `json:"polls_per_solve_vs_fixed3s_max"`
	AddedLatencyP50Ms        *float64 `json:"added_latency_p50_ms"`
	AddedLatencyP50MsFixed3s *float64 `json:"added_latency_p50_ms_fixed3s"`
	AddedLatencyMeanMs       *float64 `json:"added_latency_mean_ms"`
	AddedLatencyMeanMsFixed3 *float64 `json:"added_latency_mean_ms_fixed3s"`
	AddedLatencyP90Ms        *float64 `json:"added_latency_p90_ms"`
	AddedLatencyP90MsFixed3s *float64 `json:"added_latency_p90_ms_fixed3s"`
	SubmitJobsPerS           *float64 `json:"submit_jobs_per_s"`
	SequentialSubmitJobsPerS *float64 `json:"sequential_submit_jobs_per_s"`
	SubmitVsSequential       *float64 `json:"submit_vs_sequential"`
	SubmitVsSequentialMin    *float64 `json:"submit_vs_sequential_min"`
	SubmitVsSequentialMax    *float64 `json:"submit_vs_sequential_max"`
	CreatesPerJobMix         *float64 `json:"creates_per_job_mix"`
	CreatesPerJobMixRetryAll *float64 `json:"creates_per_job_mix_retry_all"`
	// package throughput: the same e2e run on a queue with a spend cap (every createTask reserved and
	// settled on the shared ledger), against the e2e run without one, in the same rounds.
	BudgetE2EJobsPerS   *float64 `json:"budget_e2e_jobs_per_s"`
	BudgetE2EVsPlain    *float64 `json:"budget_e2e_vs_plain"`
	BudgetE2EVsPlainMin *float64 `json:"budget_e2e_vs_plain_min"`
	BudgetE2EVsPlainMax *float64 `json:"budget_e2e_vs_plain_max"`
	// package gatewaybench
	GatewayCreateVsSubmit     *float64 `json:"gateway_create_vs_submit"`
	GatewayCreateVsSubmitMin  *float64 `json:"gateway_create_vs_submit_min"`
	GatewayCreateVsSubmitMax  *float64 `json:"gateway_create_vs_submit_max"`
	GatewayResultVsStatus     *float64 `json:"gateway_result_vs_status"`
	GatewayResultVsStatusMin  *float64 `json:"gateway_result_vs_status_min"`
	GatewayResultVsStatusMax  *float64 `json:"gateway_result_vs_status_max"`
	GatewayCreateTasksPerS    *float64 `json:"gateway_create_tasks_per_s"`
	Submit64JobsPerS          *float64 `json:"submit_64_goroutines_jobs_per_s"`
	GatewayGetTaskResultsPerS *float64 `json:"gateway_get_task_results_per_s"`
	StatusPerS                *float64 `json:"status_per_s"`
	// package gatewaybench, twoprocs.go: createTask/s through two `solvequeue gateway` child
	// processes on one Redis against one, each child bounded to its own CPU share (GOMAXPROCS).
	GatewayTwoVsOne           *float64 `json:"gateway_two_vs_one"`
	GatewayTwoVsOneMin        *float64 `json:"gateway_two_vs_one_min"`
	GatewayTwoVsOneMax        *float64 `json:"gateway_two_vs_one_max"`
	GatewayOneProcCreatesPerS *float64 `json:"gateway_one_process_create_tasks_per_s"`
	GatewayTwoProcCreatesPerS *float64 `json:"gateway_two_processes_create_tasks_per_s"`
	// package fairness: a quiet gateway key's solve time beside a noisy key's burst over alone
	GatewayFairness    *float64 `json:"gateway_fairness"`
	GatewayFairnessMin *float64 `json:"gateway_fairness_min"`
	GatewayFairnessMax *float64 `json:"gateway_fairness_max"`

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

// Sizes are the workloads of a run.
type Sizes struct {
	Rounds, WarmupRounds                             int // each comparison's measured and warm-up rounds (rounds.go)
	ThroughputJobs, ThroughputConcurrency, E2eWarmup int
	InflightJobs, InflightConcurrency                int
	InflightSolve                                    time.Duration
	PollWarmup, PollWarmupBatches, PollJobs          int     // PollJobs: over all rounds
	PollScale                                        float64 // 1 for the time scale
	SubmitJobs, SequentialJobs, SubmitConcurrency    int
	MixJobs                                          int
	MixBackoff                                       [2]time.Duration // base, max
	GatewayJobs                                      int
	Gateway2Calls                                    int // createTasks per side and round of the gateway2 section
	// ClusterJobs and ClusterRounds size the cluster section: it has no target of its own, so it
	// runs fewer and smaller rounds than the throughput section it repeats, to keep a full run short.
	ClusterJobs, ClusterRounds int
}

// SizesFor returns the workloads of a quick or a full run.
func SizesFor(quick bool) Sizes {
	if quick {
		return Sizes{Rounds: 3, WarmupRounds: 1, ThroughputJobs: 400, ThroughputConcurrency: 100, E2eWarmup: 100,
			InflightJobs: 200, InflightConcurrency: 10_000, InflightSolve: 2 * time.Second,
			PollWarmup: 60, PollWarmupBatches: 2, PollJobs: 100, PollScale: 0.1,
			SubmitJobs: 2_000, SequentialJobs: 500, SubmitConcurrency: EnqueueConcurrency,
			MixJobs: 100, MixBackoff: [2]time.Duration{100 * time.Millisecond, 200 * time.Millisecond}, GatewayJobs: 1_000,
			ClusterJobs: 400, ClusterRounds: 3, Gateway2Calls: 400}
	}
	return Sizes{Rounds: 5, WarmupRounds: 1, ThroughputJobs: 10_000, ThroughputConcurrency: 100, E2eWarmup: 1_000,
		InflightJobs: 10_000, InflightConcurrency: 10_000, InflightSolve: 12 * time.Second,
		PollWarmup: 250, PollWarmupBatches: 1, PollJobs: 500, PollScale: 1,
		SubmitJobs: 50_000, SequentialJobs: 5_000, SubmitConcurrency: EnqueueConcurrency,
		MixJobs: 1_000, MixBackoff: [2]time.Duration{100 * time.Millisecond, 500 * time.Millisecond}, GatewayJobs: 20_000,
		ClusterJobs: 5_000, ClusterRounds: 3, Gateway2Calls: 10_000}
}

// Ptr returns a pointer to v, for a Report's figures.
func Ptr(v float64) *float64 { return &v }

// Round rounds v to digits decimal places, half away from zero.
func Round(v float64, digits int) float64 {
	p := 1.0
	for range digits {
		p *= 10
	}
	if v < 0 {
		return -float64(int64(-v*p+0.5)) / p
	}
	return float64(int64(v*p+0.5)) / p
}

// Ratio is a/b rounded to three places, nil when b is 0.
func Ratio(a, b float64) *float64 {
	if b == 0 {
		return nil
	}
	return Ptr(Round(a/b, 3))
}

// Round0 rounds v to a whole number.
func Round0(v float64) float64 { return Round(v, 0) }
