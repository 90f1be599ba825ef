package bench

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
)

// target is one of the targets, judged on a report.
type target struct {
	name string
	want string
	met  func(r *Report) (bool, bool) // met, known
}

func known2(a, b *float64) bool { return a != nil && b != nil }

// targets are the figures' targets (issues 7, 12, 16 and 24), each judged on the median of its
// rounds; none is asserted anywhere, they are reported.
var targets = []target{
	{"e2e_vs_naive", ">= 0.95, lowest round >= 0.85", func(r *Report) (bool, bool) {
		ok := known2(r.E2EVsNaive, r.E2EVsNaiveMin)
		return ok && *r.E2EVsNaive >= 0.95 && *r.E2EVsNaiveMin >= 0.85, ok
	}},
	{"budget_e2e_vs_plain", ">= 0.9", func(r *Report) (bool, bool) {
		return r.BudgetE2EVsPlain != nil && *r.BudgetE2EVsPlain >= 0.9, r.BudgetE2EVsPlain != nil
	}},
	{"inflight_wall_s", "<= the floor's wall + 8", func(r *Report) (bool, bool) {
		floor, ok := r.Context.Details["inflight_floor_wall_s"]
		ok = ok && r.InflightWallS != nil
		return ok && *r.InflightWallS <= floor+8, ok
	}},
	{"inflight_peak_rss_mb", "<= 256", func(r *Report) (bool, bool) {
		return r.InflightPeakRSSMB != nil && *r.InflightPeakRSSMB <= 256, r.InflightPeakRSSMB != nil
	}},
	{"inflight_rss_vs_floor", "<= 1.2 (issue 16)", func(r *Report) (bool, bool) {
		return r.InflightRSSVsFloor != nil && *r.InflightRSSVsFloor <= 1.2, r.InflightRSSVsFloor != nil
	}},
	{"polls_per_solve", "<= 0.90 x fixed 3 s", func(r *Report) (bool, bool) {
		return r.PollsPerSolveVsFixed != nil && *r.PollsPerSolveVsFixed <= 0.90, r.PollsPerSolveVsFixed != nil
	}},
	{"added_latency_p50_ms", "<= fixed 3 s", func(r *Report) (bool, bool) {
		ok := known2(r.AddedLatencyP50Ms, r.AddedLatencyP50MsFixed3s)
		return ok && *r.AddedLatencyP50Ms <= *r.AddedLatencyP50MsFixed3s, ok
	}},
	{"added_latency_mean_ms", "<= fixed 3 s", func(r *Report) (bool, bool) {
		ok := known2(r.AddedLatencyMeanMs, r.AddedLatencyMeanMsFixed3)
		return ok && *r.AddedLatencyMeanMs <= *r.AddedLatencyMeanMsFixed3, ok
	}},
	{"added_latency_p90_ms", "<= fixed 3 s", func(r *Report) (bool, bool) {
		ok := known2(r.AddedLatencyP90Ms, r.AddedLatencyP90MsFixed3s)
		return ok && *r.AddedLatencyP90Ms <= *r.AddedLatencyP90MsFixed3s, ok
	}},
	{"submit_vs_sequential", ">= 2 (aim 4)", func(r *Report) (bool, bool) {
		return r.SubmitVsSequential != nil && *r.SubmitVsSequential >= 2, r.SubmitVsSequential != nil
	}},
	{"creates_per_job_mix", "<= 1.25", func(r *Report) (bool, bool) {
		return r.CreatesPerJobMix != nil && *r.CreatesPerJobMix <= 1.25, r.CreatesPerJobMix != nil
	}},
	{"gateway_create_vs_submit", ">= 0.5 (issue 12)", func(r *Report) (bool, bool) {
		return r.GatewayCreateVsSubmit != nil && *r.GatewayCreateVsSubmit >= 0.5, r.GatewayCreateVsSubmit != nil
	}},
	{"gateway_result_vs_status", ">= 0.5 (issue 12)", func(r *Report) (bool, bool) {
		return r.GatewayResultVsStatus != nil && *r.GatewayResultVsStatus >= 0.5, r.GatewayResultVsStatus != nil
	}},
	{"gateway_two_vs_one", ">= 1.6 (issue 24)", func(r *Report) (bool, bool) {
		return r.GatewayTwoVsOne != nil && *r.GatewayTwoVsOne >= 1.6, r.GatewayTwoVsOne != nil
	}},
	{"duration_s", "<= 600 for a full run of every section", func(r *Report) (bool, bool) {
		full := !r.Context.Quick && len(r.Context.SectionS) == len(Sections)
		return full && r.Context.DurationS <= 600, full
	}},
	{"gateway_fairness", "<= 1.5", func(r *Report) (bool, bool) {
		return r.GatewayFairness != nil && *r.GatewayFairness <= 1.5, r.GatewayFairness != nil
	}},
}

// WriteTable prints the report for people: each figure beside its baseline, then the targets.
// Figures are the medians of their rounds; a ratio shows its lowest and highest round beside it,
// as "median (min–max)".
func WriteTable(w io.Writer, r *Report) error {
	c := r.Context
	fmt.Fprintf(w, "solvequeue bench%s: %s, %s, Redis: %s, %.0f s\n\n", map[bool]string{true: " --quick (not the figures)", false: ""}[c.Quick],
		c.Machine, c.GoVersion, c.Redis, c.DurationS)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "WHAT\tSOLVEQUEUE\tBASELINE\tRATIO: MEDIAN (MIN–MAX)")
	row := func(what string, ours, base *float64, ratio [3]*float64) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", what, num(ours), num(base), spread(ratio))
	}
	row("throughput, jobs/s (baseline: naive asynq handler)", r.E2EJobsPerS, r.NaiveJobsPerS, [3]*float64{r.E2EVsNaive, r.E2EVsNaiveMin, r.E2EVsNaiveMax})
	row("throughput, jobs/s (baseline: no-op asynq handler)", r.E2EJobsPerS, r.FloorJobsPerS, [3]*float64{r.E2EVsFloor, r.E2EVsFloorMin, r.E2EVsFloorMax})
	row("throughput with a spend cap, jobs/s (baseline: e2e without one)", r.BudgetE2EJobsPerS, r.E2EJobsPerS,
		[3]*float64{r.BudgetE2EVsPlain, r.BudgetE2EVsPlainMin, r.BudgetE2EVsPlainMax})
	if _, ok := r.Context.Details["e2e_jobs_per_s_cluster"]; ok {
		d := func(k string) *float64 {
			if v, ok := r.Context.Details[k]; ok {
				return &v
			}
			return nil
		}
		row(fmt.Sprintf("throughput on a %d-node Redis Cluster, jobs/s (baseline: one Redis)", r.Context.Sizes["cluster_nodes"]),
			d("e2e_jobs_per_s_cluster"), d("e2e_jobs_per_s_single"),
			[3]*float64{d("cluster_e2e_vs_single"), d("cluster_e2e_vs_single_min"), d("cluster_e2e_vs_single_max")})
	}
	if r.InflightJobs != nil {
		fmt.Fprintf(tw, "in flight: %s jobs of %s s, wall s (baseline: the solve time)\t%s\t%s\t\n",
			num(r.InflightJobs), num(r.InflightSolveS), num(r.InflightWallS), num(r.InflightSolveS))
	}
	row("in flight: peak RSS of the worker process, MB (baseline: plain asynq, handlers that sleep)", r.InflightPeakRSSMB, r.InflightFloorRSSMB,
		[3]*float64{r.InflightRSSVsFloor, r.InflightRSSVsFloorMin, r.InflightRSSVsFloorMax})
	row("polls per solve (baseline: every 3 s)", r.PollsPerSolve, r.PollsPerSolveFixed3s,
		[3]*float64{r.PollsPerSolveVsFixed, r.PollsPerSolveVsFixedMin, r.PollsPerSolveVsFixedMax})
	none := [3]*float64{}
	row("added latency p50, ms (baseline: every 3 s)", r.AddedLatencyP50Ms, r.AddedLatencyP50MsFixed3s, none)
	row("added latency mean, ms (baseline: every 3 s)", r.AddedLatencyMeanMs, r.AddedLatencyMeanMsFixed3, none)
	row("added latency p90, ms (baseline: every 3 s)", r.AddedLatencyP90Ms, r.AddedLatencyP90MsFixed3s, none)
	row("submit, jobs/s (baseline: one at a time)", r.SubmitJobsPerS, r.SequentialSubmitJobsPerS,
		[3]*float64{r.SubmitVsSequential, r.SubmitVsSequentialMin, r.SubmitVsSequentialMax})
	row("createTask per job, error mix (baseline: retry all 25x)", r.CreatesPerJobMix, r.CreatesPerJobMixRetryAll, none)
	row("gateway createTask/s, 64 HTTP clients (baseline: Submit, 64 goroutines)", r.GatewayCreateTasksPerS, r.Submit64JobsPerS,
		[3]*float64{r.GatewayCreateVsSubmit, r.GatewayCreateVsSubmitMin, r.GatewayCreateVsSubmitMax})
	row("gateway getTaskResult/s (baseline: StatusIn, 64 goroutines)", r.GatewayGetTaskResultsPerS, r.StatusPerS,
		[3]*float64{r.GatewayResultVsStatus, r.GatewayResultVsStatusMin, r.GatewayResultVsStatusMax})
	row("gateway createTask/s, two gateway processes (baseline: one process)", r.GatewayTwoProcCreatesPerS, r.GatewayOneProcCreatesPerS,
		[3]*float64{r.GatewayTwoVsOne, r.GatewayTwoVsOneMin, r.GatewayTwoVsOneMax})
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w, "\ntargets, on the medians (reported, never asserted):")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, t := range targets {
		met, known := t.met(r)
		verdict := "not run"
		switch {
		case known && met:
			verdict = "met"
		case known:
			verdict = "MISSED"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", t.name, t.want, verdict)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range c.Notes {
		fmt.Fprintln(w, "note:", n)
	}
	return nil
}

// spread prints a ratio as "median (min–max)", or the median alone when its spread is unknown.
func spread(r [3]*float64) string {
	if r[0] == nil || r[1] == nil || r[2] == nil {
		return num(r[0])
	}
	return fmt.Sprintf("%s (%s–%s)", num(r[0]), num(r[1]), num(r[2]))
}

func num(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'f', -1, 64)
}
