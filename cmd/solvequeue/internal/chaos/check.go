package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// ownCodes are the codes solvequeue itself gives an outcome, beside AnySolver's.
var ownCodes = map[string]bool{classify.CodeJobExpired: true, classify.CodeBudgetSpent: true,
	classify.CodeTimeout: true, classify.CodeConnection: true, classify.CodeBadResponse: true,
	classify.CodeHTTP5xx: true, classify.CodeWorkerError: true}

// resultWindow is how long the fake keeps a task; a later createTask may replace it.
const resultWindow = anysolvertest.DefaultResultTTL - 10*time.Second

// check checks every invariant and fills the report's totals and violations.
func (r *run) check(ctx context.Context) {
	t := &r.report.Totals
	add := func(inv, id, format string, args ...any) {
		r.report.Violations = append(r.report.Violations, Violation{Invariant: inv, JobID: id, Detail: fmt.Sprintf(format, args...)})
	}
	letters, err := r.admin.DeadLetters(ctx)
	if err != nil {
		add("dead letter exactly when dead", "", "read the dead-letter queue: %v", err)
	}
	inDLQ := map[string]bool{}
	for _, d := range letters {
		inDLQ[d.Queue+"/"+d.ID] = true
	}
	var budgetCreates []time.Time
	for _, j := range r.jobs {
		id := j.job.ID
		key, _ := j.job.Task["websiteKey"].(string)
		calls := r.rec.calls(key)
		redrives := r.redriveTimes(id)
		out, err := r.client.StatusIn(ctx, j.job.Queue, id)
		state := string(out.State)
		if err != nil {
			state = "unreadable: " + err.Error()
		}
		t.States[state]++
		t.Kinds[j.kind+" "+state]++
		t.CreateTaskCalls += len(calls.creates)

		// Every job ended, in one final state consistent with AnySolver's answers.
		if err != nil || !final(out.State) {
			add("every job ended", id, "%s job (%d redrives) is %s after the run settled", j.kind, len(redrives), state)
		} else if msg := consistent(out, calls, len(redrives)); msg != "" {
			add("final state consistent with its answers", id, "%s job (%d redrives): %s", j.kind, len(redrives), msg)
		} else if j.kind == "tight" && out.State != enqueue.StateSolved && !r.killedDuring(j.submitted, out.FinishedAt) {
			add("final state consistent with its answers", id, "tight job (no retry budget; the fake answered no error, no worker was killed during its life): %s",
				describeOutcome(out))
		}
		// A dead-letter entry exactly when dead.
		if dead, listed := out.State == enqueue.StateDead, inDLQ[j.job.Queue+"/"+id]; dead != listed {
			add("dead letter exactly when dead", id, "%s job is %s, dead-letter entry: %v", j.kind, state, listed)
		}
		// createTask calls: one per paid task, plus one per crash in the crash window.
		paid, allowed, crash, msgs := r.paidTasks(calls, redrives)
		t.PaidTasks += paid
		t.AllowedPaidTasks += allowed
		t.CrashExtraTasks += crash
		for _, m := range msgs {
			add("no createTask beyond what is allowed", id, "%s job: %s", j.kind, m)
		}
		if j.job.Queue == BudgetQueue {
			for _, c := range calls.creates {
				if c.TaskID != "" {
					budgetCreates = append(budgetCreates, c.At)
				}
			}
		}
		// Every outcome called back, the last delivery telling the final outcome.
		if j.job.CallbackURL != "" {
			t.CallbackJobs++
			t.CallbackOutcomes += 1 + len(redrives)
			ds := r.recv.deliveries(id)
			t.CallbacksDelivered += len(ds)
			if err == nil {
				for _, m := range callbackProblems(out, ds, 1+len(redrives)) {
					add("every outcome called back", id, "%s job (%d redrives): %s", j.kind, len(redrives), m)
				}
			}
		}
	}
	t.CallbacksRefused = r.recv.refused.Load()
	// A budget never passed: in every window, no more paid createTask calls than the highest
	// cap a live worker had.
	slices.SortFunc(budgetCreates, func(a, b time.Time) int { return a.Compare(b) })
	for i, at := range budgetCreates {
		n := 0
		for _, b := range budgetCreates[:i+1] {
			if at.Sub(b) < BudgetWindow {
				n++
			}
		}
		t.BudgetPeak = max(t.BudgetPeak, n)
		cap := max(r.workers.capAt(at), r.workers.capAt(at.Add(-2*time.Second)))
		if n > cap {
			add("a budget never passed", "", "queue %s: %d paid createTask calls in the %s up to %.1fs, cap %d",
				BudgetQueue, n, BudgetWindow, at.Sub(r.start).Seconds(), cap)
		}
	}
	// The recorder read what the fake counted.
	st := r.fake.Stats()
	t.FakeCreates, t.FakeCreated = st.Creates, st.Created
	if st.Creates != t.CreateTaskCalls || st.Created != t.PaidTasks {
		add("the fake's own counts", "", "the fake counted %d createTask calls and %d paid tasks, the run's jobs %d and %d",
			st.Creates, st.Created, t.CreateTaskCalls, t.PaidTasks)
	}
}

func (r *run) redriveTimes(id string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.redriven[id]...)
}

// consistent says what is wrong with a final outcome, given what the fake answered the job.
func consistent(out enqueue.Outcome, calls jobCalls, redrives int) string {
	answered := map[string]bool{}
	ready := map[string]bool{}
	for _, c := range append(calls.creates, calls.polls...) {
		if c.Code != "" {
			answered[c.Code] = true
		}
		if c.Status == "ready" && c.Token != "" {
			ready[c.Token] = true
		}
	}
	switch out.State {
	case enqueue.StateSolved:
		if tok := token(out.Solution); !ready[tok] {
			return fmt.Sprintf("solved with token %q, which the fake never answered ready for it", tok)
		}
	default:
		if out.Error == nil {
			return fmt.Sprintf("%s without an error", out.State)
		}
		code := out.Error.ErrorCode
		if !answered[code] && !ownCodes[code] {
			return fmt.Sprintf("%s with %s, which the fake never answered it", out.State, code)
		}
		if code == classify.CodeJobExpired && redrives > 0 {
			return fmt.Sprintf("%s with %s after a redrive, which gives a fresh lifetime", out.State, code)
		}
		if out.State == enqueue.StateFailed && code == classify.CodeBudgetSpent {
			return "failed with BUDGET_SPENT: a spent budget holds a job, it never fails it"
		}
	}
	return ""
}

func token(solution json.RawMessage) string {
	var s struct {
		Token string `json:"token"`
	}
	_ = json.Unmarshal(solution, &s)
	return s.Token
}

// paidTasks counts a job's paid tasks and how many were allowed: a task paid for while an
// earlier one of the job was neither answered nor expired is a second payment, allowed only
// across a redrive (a fresh start the operator chose) or within CrashWindow before a worker's
// SIGKILL (longer while Redis was down), once per kill.
func (r *run) paidTasks(calls jobCalls, redrives []time.Time) (paid, allowed, crash int, problems []string) {
	var tasks []call
	for _, c := range calls.creates {
		if c.TaskID != "" {
			tasks = append(tasks, c)
		}
	}
	answered := map[string]bool{}
	for _, p := range calls.polls {
		if p.Status == "ready" || p.Status == "failed" {
			answered[p.TaskID] = true
		}
	}
	r.mu.Lock()
	kills := append([]time.Time(nil), r.kills...)
	redisOff := append([][2]time.Time(nil), r.redisOff...)
	r.mu.Unlock()
	usedKill := map[int]bool{}
	paid, allowed = len(tasks), len(tasks)
	for i := 0; i+1 < len(tasks); i++ {
		prev, next := tasks[i], tasks[i+1]
		if answered[prev.TaskID] || next.At.Sub(prev.At) >= resultWindow {
			continue
		}
		if slices.ContainsFunc(redrives, func(at time.Time) bool { return at.After(prev.At) && at.Before(next.At) }) {
			continue
		}
		explained := false
		for k, at := range kills {
			window := CrashWindow
			for _, off := range redisOff {
				if off[0].After(prev.At) && off[0].Before(at) {
					window = max(window, off[1].Sub(prev.At)+CrashWindow)
				}
			}
			if !usedKill[k] && !at.Before(prev.At) && at.Sub(prev.At) <= window && at.Before(next.At) {
				usedKill[k], explained = true, true
				crash++
				break
			}
		}
		if !explained {
			allowed--
			problems = append(problems, fmt.Sprintf("paid task %s (created at %.1fs) was neither answered nor expired when task %s was paid for at %.1fs, with no redrive or worker kill between",
				prev.TaskID, prev.At.Sub(r.start).Seconds(), next.TaskID, next.At.Sub(r.start).Seconds()))
		}
	}
	return paid, allowed, crash, problems
}

// callbackProblems checks a callback job's deliveries against its final outcome.
func callbackProblems(out enqueue.Outcome, ds []delivery, outcomes int) []string {
	if len(ds) == 0 {
		return []string{fmt.Sprintf("no callback delivered; the job is %s", out.State)}
	}
	var problems []string
	last := ds[len(ds)-1]
	if slices.ContainsFunc(ds, func(d delivery) bool { return d.OutcomeSeq > 0 }) {
		bySeq := map[int]delivery{}
		for _, d := range ds {
			if prev, ok := bySeq[d.OutcomeSeq]; ok && (prev.Status != d.Status || prev.ErrorCode != d.ErrorCode || prev.Token != d.Token) {
				problems = append(problems, fmt.Sprintf("two deliveries of outcome %d disagree: %s", d.OutcomeSeq, describe(prev)+" and "+describe(d)))
			}
			bySeq[d.OutcomeSeq] = d
			if d.OutcomeSeq > last.OutcomeSeq {
				last = d
			}
		}
		for seq := 1; seq <= outcomes; seq++ {
			if _, ok := bySeq[seq]; !ok {
				problems = append(problems, fmt.Sprintf("outcome %d of %d never called back", seq, outcomes))
			}
		}
	} else if len(ds) < outcomes {
		problems = append(problems, fmt.Sprintf("%d deliveries (no outcomeSeq in the body) for %d outcomes; the last tells %s", len(ds), outcomes, describe(last)))
	}
	if msg := tells(out, last); msg != "" {
		problems = append(problems, "the last delivery "+msg)
	}
	return problems
}

// tells says how a delivery disagrees with the final outcome; "" when it tells it.
func tells(out enqueue.Outcome, d delivery) string {
	switch out.State {
	case enqueue.StateSolved:
		if d.Status != "ready" || d.Token != token(out.Solution) {
			return fmt.Sprintf("tells %s, the job is solved", describe(d))
		}
	default:
		code := ""
		if out.Error != nil {
			code = out.Error.ErrorCode
		}
		if d.Status != "failed" || d.ErrorCode != code {
			return fmt.Sprintf("tells %s, the job is %s with %s", describe(d), out.State, code)
		}
	}
	return ""
}

func describe(d delivery) string {
	s := d.Status
	if d.ErrorCode != "" {
		s += " " + d.ErrorCode
	}
	if d.OutcomeSeq > 0 {
		s += fmt.Sprintf(" (outcome %d)", d.OutcomeSeq)
	}
	return s
}

// killedDuring says whether a worker was SIGKILLed between from and to (now when to is zero).
func (r *run) killedDuring(from, to time.Time) bool {
	if to.IsZero() {
		to = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.kills, func(at time.Time) bool { return !at.Before(from) && !at.After(to) })
}

func describeOutcome(out enqueue.Outcome) string {
	s := string(out.State)
	if e := out.Error; e != nil {
		s += " with " + e.ErrorCode + " (" + e.ErrorDescription + ")"
	}
	return fmt.Sprintf("%s after %d attempts, %d retries", s, out.Attempts, out.Retries)
}
