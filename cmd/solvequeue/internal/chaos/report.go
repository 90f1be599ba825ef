package chaos

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteSummary writes a finished run for people: its figures, then every violation.
func WriteSummary(w io.Writer, r *Report) error {
	t := r.Totals
	var states []string
	for s, n := range t.States {
		states = append(states, fmt.Sprintf("%d %s", n, s))
	}
	sort.Strings(states)
	fmt.Fprintf(w, "\nchaos run (seed %d, %d workers, %.0f s): %d jobs: %s\n", r.Seed, r.Workers, r.WallSeconds, t.Jobs, strings.Join(states, " · "))
	var kinds []string
	for k, n := range t.Kinds {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, n))
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "by kind: %s\n", strings.Join(kinds, " · "))
	fmt.Fprintf(w, "faults: %d worker SIGKILLs · %d Redis restarts from the AOF · %d budget changes · %d redrives in %d rounds\n",
		t.Kills, t.RedisRestarts, t.BudgetChanges, t.Redrives, t.RedriveRounds)
	fmt.Fprintf(w, "AnySolver: %d createTask calls, %d paid tasks, %d allowed (%d of them in a crash window); the fake counted %d and %d\n",
		t.CreateTaskCalls, t.PaidTasks, t.AllowedPaidTasks, t.CrashExtraTasks, t.FakeCreates, t.FakeCreated)
	fmt.Fprintf(w, "budget: at most %d paid createTask calls in any %s on queue %s (caps %v)\n", t.BudgetPeak, BudgetWindow, BudgetQueue, budgetCaps)
	fmt.Fprintf(w, "callbacks: %d jobs with %d outcomes; %d deliveries kept, %d refused while the receiver was down\n",
		t.CallbackJobs, t.CallbackOutcomes, t.CallbacksDelivered, t.CallbacksRefused)
	if !r.Settled {
		fmt.Fprintln(w, "the run did not settle within its bound: the checks ran on what was there")
	}
	fmt.Fprintf(w, "violations: %d\n", len(r.Violations))
	for _, v := range r.Violations {
		id := v.JobID
		if id == "" {
			id = "-"
		}
		fmt.Fprintf(w, "  [%s] %s: %s\n", v.Invariant, id, v.Detail)
	}
	if r.Dir != "" {
		fmt.Fprintf(w, "logs, policy and Redis's data kept in %s\n", r.Dir)
	}
	return nil
}
