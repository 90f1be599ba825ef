package attempt

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// testLifetime is the worker's default Lifetime.
const testLifetime = 24 * time.Hour

var (
	decideNow = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	testRules = rules{policy: classify.Default(), lifetime: testLifetime, holdWait: 30 * time.Second, pollInterval: 3 * time.Second}
)

func classified(code string, errorID int) ending {
	v := classify.Default().Classify(classify.Error{ErrorID: errorID, ErrorCode: code, Call: classify.CallCreateTask})
	return ending{kind: endedClassified, verdict: v,
		info: enqueue.ErrorInfo{ErrorID: errorID, ErrorCode: v.Code, ErrorDescription: "as AnySolver said", Call: "createTask", Attempt: 1}}
}

func input(e ending, mods ...func(*decideInput)) decideInput {
	in := decideInput{
		record:  jobwire.Record{State: enqueue.StateActive, Attempts: 1, CreateTasks: 1, Remote: &jobwire.Remote{TaskID: []byte("7")}},
		payload: jobwire.Payload{SubmittedAt: decideNow.Add(-time.Minute), Task: map[string]any{"type": "RecaptchaV2TaskProxyless"}},
		ending:  e, now: decideNow, jitter: 0.5,
	}
	for _, m := range mods {
		m(&in)
	}
	return in
}

// want is what a row checks; a zero field is checked too (a transition is small enough to say
// all of it).
type want struct {
	state       enqueue.State
	write       bool
	spendsRetry bool
	archive     bool
	deadLetter  bool
	report      report
	code        string // "" for no cause
	decision    classify.Decision
	descHas     string
	delay       time.Duration // checked when non-zero
	handBack    bool
}

func TestDecide(t *testing.T) {
	t.Parallel()
	deadlineIn := func(d time.Duration) func(*decideInput) {
		return func(in *decideInput) { in.payload.Deadline = decideNow.Add(d) }
	}
	retried := func(n int) func(*decideInput) { return func(in *decideInput) { in.retried = n } }
	lastError := func(in *decideInput) {
		in.record.Error = &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "SERVICE_UNAVAILABLE", ErrorDescription: "down", Decision: "retry"}
	}
	noCreate := func(in *decideInput) { in.record.CreateTasks, in.record.Attempts = 0, 0 }
	recorded := func(s enqueue.State) func(*decideInput) {
		return func(in *decideInput) {
			in.record.State, in.record.Remote = s, nil
			if s != enqueue.StateSolved {
				in.record.Error = &enqueue.ErrorInfo{ErrorCode: "DOMAIN_BANNED", Decision: "failed"}
			}
		}
	}
	providers := func(names ...string) func(*decideInput) { return func(in *decideInput) { in.providers = names } }
	atProvider := func(i int) func(*decideInput) { return func(in *decideInput) { in.record.ProviderIndex = i } }
	zero := 0
	ownBudget := func(in *decideInput) { in.payload.MaxRetries = &zero }
	throttleVerdict := classified(classify.CodeRateLimited, 1)
	held := classified(classify.CodeZeroBalance, 1)
	held.breaker = breakerWasOpen
	opener := classified(classify.CodeZeroBalance, 1)
	opener.breaker = breakerOpened
	asynqLimit := func(n int) func(*decideInput) { return func(in *decideInput) { in.maxRetry = n } }
	trouble := func(code string, errorID int, prev time.Duration) ending {
		e := classified(code, errorID)
		e.kind, e.trouble = endedPollTrouble, prev
		return e
	}
	remoteExpired := classified(classify.CodeTaskNotFound, 1)
	remoteExpired.kind = endedRemoteExpired
	noSubmittedAt := func(in *decideInput) { in.payload.SubmittedAt = time.Time{} }
	budgetHeld := func(in *decideInput) {
		in.record.CreateTasks, in.record.Attempts = 0, 0
		in.record.Error = &enqueue.ErrorInfo{ErrorCode: classify.CodeBudgetSpent, ErrorDescription: "held", Decision: "throttle"}
	}
	unsaved := func(e ending) ending { e.unsaved = true; return e }

	tests := []struct {
		name string
		in   decideInput
		want want
	}{
		{"solved", input(ending{kind: endedSolved}),
			want{state: enqueue.StateSolved, write: true, report: reportEnded}},
		{"retry", input(classified("SERVICE_UNAVAILABLE", 1)),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: "SERVICE_UNAVAILABLE", decision: classify.Retry, delay: testRules.policy.RetryDelay(0, 0.5)}},
		{"retry backs off with the retries spent", input(classified("SERVICE_UNAVAILABLE", 1), retried(3)),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: "SERVICE_UNAVAILABLE", decision: classify.Retry, delay: testRules.policy.RetryDelay(3, 0.5)}},
		{"retry budget spent", input(classified("SERVICE_UNAVAILABLE", 1), retried(10)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "(retry budget of 10 spent)"}},
		{"retries the record counted and asynq did not (a worker died before asynq heard of them) are spent", input(classified("SERVICE_UNAVAILABLE", 1), func(in *decideInput) { in.record.Retries = 10 }),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "(retry budget of 10 spent)"}},
		{"the job's own budget of 0", input(classified("SERVICE_UNAVAILABLE", 1), ownBudget),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "(retry budget of 0 spent)"}},
		{"deadline before the next retry", input(classified("SERVICE_UNAVAILABLE", 1), deadlineIn(time.Second)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "deadline passes before the next try"}},
		{"throttle", input(throttleVerdict, retried(10)),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled,
				code: classify.CodeRateLimited, decision: classify.Throttle,
				delay: testRules.policy.ThrottleDelay(throttleVerdict.verdict, 0.5)}},
		{"throttle past the deadline", input(throttleVerdict, deadlineIn(3*time.Second)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: classify.CodeRateLimited, decision: classify.Dead, descHas: "deadline passes before the next try"}},
		{"throttle past the lifetime of a job without a deadline", input(throttleVerdict, func(in *decideInput) {
			in.payload.SubmittedAt = decideNow.Add(-testLifetime)
		}), want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
			code: classify.CodeRateLimited, decision: classify.Dead, descHas: "deadline passes before the next try"}},
		{"held by an open breaker", input(held, retried(10)),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled, code: classify.CodeZeroBalance,
				decision: classify.Throttle, descHas: "(held by the account breaker)", delay: 30 * time.Second}},
		{"failed", input(classified("DOMAIN_BANNED", 1)),
			want{state: enqueue.StateFailed, write: true, report: reportEnded, code: "DOMAIN_BANNED", decision: classify.Failed}},
		{"dead", input(classified("UNKNOWN_PROVIDER_ERROR", 1)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "UNKNOWN_PROVIDER_ERROR", decision: classify.Dead}},
		{"interrupted while polling: handed back as it is, resumed at once, no retry spent", input(ending{kind: endedInterrupted, err: context.Canceled}, retried(2)),
			want{handBack: true}},
		{"interrupted before any remote task: handed back with backoff, no retry spent", input(ending{kind: endedInterrupted, err: context.Canceled}, retried(2), func(in *decideInput) { in.record.Remote = nil }),
			want{handBack: true, delay: testRules.policy.RetryDelay(2, 0.5)}},
		{"interrupted before the paid task's id landed: the id is written with the hand-back", input(unsaved(ending{kind: endedInterrupted, err: errors.New("redis: connection refused")})),
			want{write: true, handBack: true}},
		{"the attempt timed out: a retry", input(ending{kind: endedTimedOut, err: context.DeadlineExceeded}),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: classify.CodeTimeout, decision: classify.Retry, descHas: "time ran out"}},
		{"a step panicked: a retry", input(ending{kind: endedPanicked, err: errors.New("panic: nil map")}),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: classify.CodeWorkerError, decision: classify.Retry, descHas: "nil map"}},
		{"a step that panics every time ends dead with the retry budget", input(ending{kind: endedPanicked, err: errors.New("panic")}, retried(10)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: classify.CodeWorkerError, decision: classify.Dead, descHas: "retry budget of 10 spent"}},
		{"asynq's retry limit below the policy's: dead one retry before asynq would archive", input(classified("SERVICE_UNAVAILABLE", 1), retried(4), asynqLimit(5)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "(retry budget of 4 spent)"}},
		{"asynq's retry limit above the policy's: the policy's", input(classified("SERVICE_UNAVAILABLE", 1), retried(9), asynqLimit(101)),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: "SERVICE_UNAVAILABLE", decision: classify.Retry}},
		{"a failed poll: the paid task is polled again with backoff", input(trouble("SERVICE_UNAVAILABLE", 1, 0)),
			want{report: reportPolling}},
		{"a failed poll whose backoff passes the deadline: dead", input(trouble("INTERNAL_ERROR", 2, 8*time.Second), deadlineIn(5*time.Second)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "INTERNAL_ERROR", decision: classify.Dead, descHas: "deadline passed while its paid task was polled"}},
		{"the paid task outlived AnySolver's keeping: TASK_NOT_FOUND's decision, a new task next", input(remoteExpired),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: classify.CodeTaskNotFound, decision: classify.Retry}},
		{"the account error that opened the breaker: its own decision, written to a replica", input(opener),
			want{state: enqueue.StateFailed, write: true, report: reportEnded, code: classify.CodeZeroBalance, decision: classify.Failed}},
		{"a throttle of a payload without submittedAt counts its lifetime from now", input(throttleVerdict, noSubmittedAt),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled,
				code: classify.CodeRateLimited, decision: classify.Throttle}},
		{"a deadline years away: throttles stop at the lifetime", input(throttleVerdict, deadlineIn(3*365*24*time.Hour), func(in *decideInput) {
			in.payload.SubmittedAt = decideNow.Add(-testLifetime)
		}), want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
			code: classify.CodeRateLimited, decision: classify.Dead, descHas: "deadline passes before the next try"}},
		{"held by a spent budget until the deadline passed: dead BUDGET_SPENT, though never paid", input(ending{kind: endedExpired}, budgetHeld),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: classify.CodeBudgetSpent, decision: classify.Dead, descHas: "then the job's deadline passed"}},
		{"archived by asynq behind decide's back: dead, with the last error", input(ending{kind: endedArchivedByAsynq, what: "retry exhausted"}, lastError),
			want{state: enqueue.StateDead, write: true, archive: false, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "asynq archived the task by itself: retry exhausted"}},
		{"archived by asynq with no error recorded: WORKER_ERROR", input(ending{kind: endedArchivedByAsynq, what: "context deadline exceeded"}),
			want{state: enqueue.StateDead, write: true, archive: false, deadLetter: true, report: reportEnded,
				code: classify.CodeWorkerError, decision: classify.Dead, descHas: "context deadline exceeded"}},
		{"archived by asynq after a dead outcome: its dead letter again", input(ending{kind: endedArchivedByAsynq}, recorded(enqueue.StateDead)),
			want{state: enqueue.StateDead, deadLetter: true, report: reportRedelivered, code: "DOMAIN_BANNED", decision: classify.Failed}},
		{"deadline passed before any attempt", input(ending{kind: endedExpired}, noCreate),
			want{state: enqueue.StateFailed, write: true, report: reportEnded, code: classify.CodeJobExpired,
				decision: classify.Failed, descHas: "before any attempt"}},
		{"deadline passed after paid attempts", input(ending{kind: endedExpired}, lastError),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "SERVICE_UNAVAILABLE", decision: classify.Dead, descHas: "down (then the job's deadline passed)"}},
		{"unreadable payload", input(ending{kind: endedUnreadablePayload, err: errors.New("not JSON")}),
			want{state: enqueue.StateFailed, write: true, report: reportEnded, code: classify.CodeInvalidPayload,
				decision: classify.Failed, descHas: "not JSON"}},
		{"unreadable record", input(ending{kind: endedUnreadableRecord, err: errors.New("bad json"), raw: []byte("{garbage")}),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: classify.CodeRecordUnreadable, decision: classify.Dead, descHas: "risk paying AnySolver twice"}},
		{"redelivered after solved", input(ending{kind: endedRedelivered}, recorded(enqueue.StateSolved)),
			want{state: enqueue.StateSolved, report: reportRedelivered}},
		{"redelivered after failed", input(ending{kind: endedRedelivered}, recorded(enqueue.StateFailed)),
			want{state: enqueue.StateFailed, report: reportRedelivered, code: "DOMAIN_BANNED", decision: classify.Failed}},
		{"redelivered after dead: the dead letter is written again", input(ending{kind: endedRedelivered}, recorded(enqueue.StateDead)),
			want{state: enqueue.StateDead, archive: true, deadLetter: true, report: reportRedelivered,
				code: "DOMAIN_BANNED", decision: classify.Failed}},
		{"budget spent: held without spending a retry", input(ending{kind: endedBudgetSpent, wait: 20 * time.Second}, retried(10)),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled, code: classify.CodeBudgetSpent,
				decision: classify.Throttle, descHas: "budget is spent", delay: 20 * time.Second}},
		{"budget spent for hours: the job looks again within a minute", input(ending{kind: endedBudgetSpent, wait: 5 * time.Hour}),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled, code: classify.CodeBudgetSpent,
				decision: classify.Throttle, delay: budgetHoldMax}},
		{"budget spent past the job's deadline", input(ending{kind: endedBudgetSpent, wait: time.Minute}, deadlineIn(30*time.Second)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: classify.CodeBudgetSpent, decision: classify.Dead, descHas: "deadline passes before the next try"}},
		{"a provider error fails over at once, without spending a retry", input(classified("PROVIDER_UNREACHABLE", 2), retried(10), providers("A", "B", "C")),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled, code: "PROVIDER_UNREACHABLE",
				decision: decisionFailover, descHas: "failing over to provider B, 2 of 3"}},
		{"a throttling provider fails over too", input(classified("PROVIDER_RATE_LIMITED", 2), providers("A", "B")),
			want{state: enqueue.StateRetrying, write: true, report: reportRescheduled, code: "PROVIDER_RATE_LIMITED",
				decision: decisionFailover, descHas: "failing over to provider B"}},
		{"every provider failed: the code's own decision", input(classified("NO_PROVIDERS_AVAILABLE", 1), providers("A", "B"), atProvider(1)),
			want{state: enqueue.StateDead, write: true, archive: true, deadLetter: true, report: reportEnded,
				code: "NO_PROVIDERS_AVAILABLE", decision: classify.Dead}},
		{"a job error is never failed over", input(classified("DOMAIN_BANNED", 1), providers("A", "B")),
			want{state: enqueue.StateFailed, write: true, report: reportEnded, code: "DOMAIN_BANNED", decision: classify.Failed}},
		{"one provider: nothing to fail over to", input(classified("PROVIDER_UNREACHABLE", 2), providers("A")),
			want{state: enqueue.StateRetrying, write: true, spendsRetry: true, report: reportRescheduled,
				code: "PROVIDER_UNREACHABLE", decision: classify.Retry}},
		{"held for its key's fair share: handed back unpaid, no retry, nothing written", input(ending{kind: endedFairShare, what: "noisy"}, deadlineIn(time.Minute)),
			want{handBack: true, report: reportHeld, delay: fairHoldMin + fairHoldSpread/2}},
		{"held for its key's fair share past its deadline: ends as an expired job", input(ending{kind: endedFairShare, what: "noisy"}, noCreate, deadlineIn(-time.Second)),
			want{state: enqueue.StateFailed, write: true, report: reportEnded, code: classify.CodeJobExpired,
				decision: classify.Failed, descHas: "before any attempt"}},
		{"a foreign task type", input(ending{kind: endedForeign, what: "email:send"}),
			want{archive: true, report: reportForeign, code: classify.CodeInvalidPayload, decision: classify.Dead,
				descHas: `"email:send" is not a solvequeue job`}},
	}
	rowsOf := map[endingKind]int{}
	for _, tt := range tests {
		rowsOf[tt.in.ending.kind]++
	}
	for _, k := range endingKinds {
		require.Positive(t, rowsOf[k.kind], "ending kind %q has no row in TestDecide", k.name)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := fmt.Sprintf("%+v", tt.in.record)
			var beforeErr enqueue.ErrorInfo
			if tt.in.record.Error != nil {
				beforeErr = *tt.in.record.Error
			}
			got := decide(testRules, tt.in)
			require.Equal(t, before, fmt.Sprintf("%+v", tt.in.record), "decide changed its input record")
			if tt.in.record.Error != nil {
				require.Equal(t, beforeErr, *tt.in.record.Error, "decide wrote through the input's error")
			}
			require.Equal(t, tt.want.state, got.State, "state")
			require.Equal(t, tt.want.write, got.Write, "write")
			require.Equal(t, tt.want.spendsRetry, got.SpendsRetry, "spends retry")
			require.Equal(t, tt.want.archive, got.Archive, "archive")
			require.Equal(t, tt.want.deadLetter, got.DeadLetter, "dead letter")
			require.Equal(t, tt.want.report, got.Report, "report")
			require.Equal(t, tt.want.handBack, got.HandBack != nil, "hand back")
			if tt.want.delay != 0 {
				require.Equal(t, tt.want.delay, got.Delay, "delay")
			}
			if tt.want.code == "" {
				require.Nil(t, got.Cause)
			} else {
				require.NotNil(t, got.Cause)
				require.Equal(t, tt.want.code, got.Cause.ErrorCode)
				require.Equal(t, string(tt.want.decision), got.Cause.Decision)
				require.Contains(t, got.Cause.ErrorDescription, tt.want.descHas)
			}
			if got.Write && got.HandBack == nil {
				require.Equal(t, got.State, got.Record.State, "the record written says the new state")
				require.Equal(t, got.Cause, got.Record.Error, "the record keeps the cause")
				if got.State.Terminal() {
					require.Nil(t, got.Record.Remote, "an ended job waits on no remote task")
					require.Equal(t, decideNow, got.Record.FinishedAt)
				}
			}
			if tt.in.ending.kind == endedUnreadableRecord {
				require.Equal(t, tt.in.ending.raw, got.RawRecord, "the raw record is kept for the operator")
			}
			if got.Cause != nil && got.Cause.Decision == decisionFailover {
				require.Equal(t, tt.in.record.ProviderIndex+1, got.Record.ProviderIndex, "the next attempt uses the next provider")
				require.Zero(t, got.Delay, "at once, without backoff")
			}
			if tt.name == "every provider failed: the code's own decision" {
				require.Zero(t, got.Record.ProviderIndex, "a next try starts from the first provider")
			}
			require.Equal(t, tt.in.ending.kind == endedClassified && tt.in.ending.breaker == breakerOpened, got.Acked,
				"only the outcome of the job that opened the breaker waits for a replica")
			if got.PollIn > 0 {
				require.Equal(t, Transition{PollIn: got.PollIn, Report: reportPolling}, got, "polling again changes nothing else")
				return
			}
			if tt.in.ending.kind == endedArchivedByAsynq {
				require.False(t, got.Archive, "asynq archived the task already")
				return // the dead-letter mirror writes it; asynq is told nothing
			}
			// What asynq is told follows from the transition alone.
			err := got.asynqError()
			require.Equal(t, got.Archive, errors.Is(err, asynq.SkipRetry), "archive ⇔ SkipRetry")
			if got.State == enqueue.StateSolved || got.State == enqueue.StateFailed {
				require.NoError(t, err, "solved and failed complete the task")
			} else {
				require.Error(t, err)
				require.Equal(t, got.SpendsRetry, isFailure(err), "IsFailure reads the transition")
			}
			if got.HandBack != nil {
				require.ErrorIs(t, err, got.HandBack)
			}
		})
	}
}

func TestRetryDelayFuncReadsTheTransition(t *testing.T) {
	t.Parallel()
	delay := retryDelayFunc(testRules, func() float64 { return 0.5 })
	onSecond := func(d time.Duration) bool { return d >= 0 }
	tests := []struct {
		name string
		err  error
		min  time.Duration // the delay is this, stretched onto a whole second
		most time.Duration // the stretch stays under this: a second, two with dither
	}{
		{"a retry's own delay", (Transition{State: enqueue.StateRetrying, Delay: 7 * time.Second, SpendsRetry: true}).asynqError(), 7 * time.Second, 2 * time.Second},
		{"a throttle's own wait", (Transition{State: enqueue.StateRetrying, Delay: 40 * time.Second}).asynqError(), 40 * time.Second, 2 * time.Second},
		{"lease expired after a crash: at once, to resume the paid task", asynq.ErrLeaseExpired, time.Second, time.Second},
		{"anything else backs off like a retry", errors.New("panic"), testRules.policy.RetryDelay(4, 0.5), 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := delay(4, tt.err, nil)
			require.True(t, onSecond(got))
			require.GreaterOrEqual(t, got, tt.min)
			require.Less(t, got, tt.min+tt.most)
		})
	}
	require.True(t, isFailure(errors.New("a panic spends a retry")))
}

// TestDecideFollowsTheREADME ties three things that must not drift: the README's tables of codes
// and decisions, the default policy (solvequeue policy prints it; cmd/solvequeue's README test
// ties the two), and what decide does with each code on a job's first attempt.
func TestDecideFollowsTheREADME(t *testing.T) {
	t.Parallel()
	f, err := os.Open("../../README.md")
	require.NoError(t, err)
	defer f.Close()
	seedRow := regexp.MustCompile("^\\| ([12]) \\| `([A-Z0-9_]+)` \\| (retry|throttle|failed|dead) \\|")
	transportRow := regexp.MustCompile("^\\| `([A-Z0-9_]+)` \\| (retry|throttle|failed|dead) \\|")
	stateRow := regexp.MustCompile("^\\| `([a-z]+)` \\| ")
	var rows, states, decisions int
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			section = line
			continue
		}
		if m := stateRow.FindStringSubmatch(line); m != nil && section == "### Decisions" {
			_, err := classify.ParseDecision(m[1])
			require.NoError(t, err, "the README's decision table names %q", m[1])
			decisions++
			continue
		}
		if m := stateRow.FindStringSubmatch(line); m != nil && section == "### States" {
			s := enqueue.State(m[1])
			switch s {
			case enqueue.StatePending, enqueue.StateScheduled, enqueue.StateActive, enqueue.StateRetrying:
				require.False(t, s.Terminal(), s)
			case enqueue.StateSolved, enqueue.StateFailed, enqueue.StateDead:
				require.True(t, s.Terminal(), s)
			default:
				t.Fatalf("the README's state table names %q, which is not an enqueue.State", s)
			}
			states++
			continue
		}
		var (
			code, decision string
			errorID        = 1
		)
		if m := seedRow.FindStringSubmatch(line); m != nil {
			errorID, _ = strconv.Atoi(m[1])
			code, decision = m[2], m[3]
		} else if m := transportRow.FindStringSubmatch(line); m != nil {
			code, decision = m[1], m[2]
		} else {
			continue
		}
		rows++
		got := decide(testRules, input(classified(code, errorID)))
		switch classify.Decision(decision) {
		case classify.Retry:
			require.Equal(t, enqueue.StateRetrying, got.State, code)
			require.True(t, got.SpendsRetry, "%s: a retry spends the budget", code)
		case classify.Throttle:
			require.Equal(t, enqueue.StateRetrying, got.State, code)
			require.False(t, got.SpendsRetry, "%s: a throttle does not spend the budget", code)
		case classify.Failed:
			require.Equal(t, enqueue.StateFailed, got.State, code)
			require.False(t, got.Archive, "%s: failed is not dead-lettered", code)
		case classify.Dead:
			require.Equal(t, enqueue.StateDead, got.State, code)
			require.True(t, got.Archive && got.DeadLetter, "%s: dead is archived and dead-lettered", code)
		}
		require.Equal(t, decision, strings.ToLower(got.Cause.Decision), code)
	}
	require.NoError(t, sc.Err())
	require.Equal(t, 7, states, "the README's state table lists the seven states")
	require.Equal(t, 4, decisions, "the README's decision table lists the four decisions")
	require.Equal(t, len(classify.SeedCodes())+8, rows, "every seed code and the 8 transport codes are in the README")
}

// TestDecideKeepsTheErrorHistory: every error a job meets is added to its record's history,
// stamped with the attempt's end, and the record decide was given is left as it was.
func TestDecideKeepsTheErrorHistory(t *testing.T) {
	t.Parallel()
	in := input(classified("SERVICE_UNAVAILABLE", 1))
	first := decide(testRules, in)
	require.Len(t, first.Record.Errors, 1)
	require.Equal(t, decideNow, first.Record.Errors[0].At)
	require.Equal(t, "retry", first.Record.Errors[0].Decision)

	in2 := input(classified("DOMAIN_BANNED", 1), func(in *decideInput) { in.record = first.Record })
	in2.now = decideNow.Add(time.Minute)
	second := decide(testRules, in2)
	require.Equal(t, enqueue.StateFailed, second.State)
	require.Len(t, second.Record.Errors, 2)
	require.Equal(t, []string{"retry", "failed"}, []string{second.Record.Errors[0].Decision, second.Record.Errors[1].Decision})
	require.Equal(t, "createTask", second.Record.Errors[1].Call)
	require.Equal(t, *second.Record.Error, second.Record.Errors[1])
	require.Len(t, first.Record.Errors, 1, "the earlier record is not changed")
}

// TestEndingsFollowTheREADME: the README's table of endings names every ending kind, and no
// other.
func TestEndingsFollowTheREADME(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	row := regexp.MustCompile(`^\| ([a-z][^|]*?) \| `)
	var names []string
	section := ""
	for line := range strings.Lines(string(data)) {
		if strings.HasPrefix(line, "#") {
			section = strings.TrimSpace(line)
			continue
		}
		if m := row.FindStringSubmatch(line); m != nil && section == "### Endings" && m[1] != "ending" {
			names = append(names, m[1])
		}
	}
	var want []string
	for _, k := range endingKinds {
		want = append(want, k.name)
	}
	require.Equal(t, want, names, "the README's endings table, in the code's order")
}
