package attempt

import (
	"fmt"
	"time"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/metrics"
)

// This file is the whole of "what happens to a job when an attempt ends": decide is a pure
// function from how the attempt ended (and the job's record, payload, retry count, the clock and
// the policy) to a Transition, and apply (outcome.go) performs one. A new way for an attempt to
// end is a new endingKind and a new case in decide, never a branch somewhere else. The README's
// state and decision tables are the documentation; TestDecideFollowsTheREADME ties them to this
// function.

// endingKind is how an attempt ended, as the handler saw it. Every way an attempt can stop, asynq's
// own included, is one of these; endingKinds lists them with the README's name for each.
type endingKind int

const (
	// endedSolved: AnySolver returned a solution.
	endedSolved endingKind = iota
	// endedClassified: AnySolver or the transport answered with an error; the verdict says
	// what it means. For an account error, breaker says whether this job opened the account
	// breaker or met it open already (the job is then held, not failed).
	endedClassified
	// endedPollTrouble: a poll of the paid remote task failed in a way that leaves the task
	// alive (transport trouble, AnySolver's internal errors, a rate limit): it is polled again
	// after a backoff, unless the job's deadline passes first.
	endedPollTrouble
	// endedRemoteExpired: the paid remote task was not ready within the time AnySolver keeps a
	// task: it is gone, and the job is treated as AnySolver's TASK_NOT_FOUND.
	endedRemoteExpired
	// endedInterrupted: shutdown, a lost lease, or Redis trouble. The record (with any paid
	// remote task) stays as last saved, and asynq gets the job back without spending a retry.
	endedInterrupted
	// endedTimedOut: the attempt's own time ran out (asynq's Timeout for the task, less a
	// margin): it spends a retry like a transient error; a paid remote task is resumed next.
	endedTimedOut
	// endedPanicked: a step of the attempt panicked (a bug): it spends a retry like a transient
	// error, so that a job that always panics ends dead instead of looping.
	endedPanicked
	// endedExpired: the job's deadline passed before this attempt could create a task.
	endedExpired
	// endedUnreadablePayload: the task in Redis is not a solve job we can read (or its image
	// body is gone).
	endedUnreadablePayload
	// endedUnreadableRecord: the job's record cannot be decoded, so whether a paid remote task
	// is pending is unknown: the job is ended rather than risk paying twice.
	endedUnreadableRecord
	// endedRedelivered: the record already holds an outcome (asynq ran the job again after a
	// lost completion write): it ends as recorded, calling AnySolver not at all.
	endedRedelivered
	// endedForeign: the task in our queue is not a solvequeue job at all.
	endedForeign
	// endedBudgetSpent: the queue's budget refused the createTask: the job is held, not paid, not
	// failed, its retry budget untouched, until the window frees room (wait).
	endedBudgetSpent
	// endedArchivedByAsynq: asynq archived the task by itself (its own retry limit, a task
	// enqueued with a smaller MaxRetry) and the dead-letter mirror found it without an entry.
	endedArchivedByAsynq
	// endedFairShare: the worker's slots run short and the job's gateway key (what) holds its
	// fair share of them already (package fairshare): the job is handed back before anything
	// is paid, its retry budget untouched, to run again shortly.
	endedFairShare
)

// endingKinds names every ending kind as the README's table of endings does.
var endingKinds = []struct {
	kind endingKind
	name string
}{
	{endedSolved, "solved"},
	{endedClassified, "answered with an error"},
	{endedPollTrouble, "a poll failed, the paid task lives on"},
	{endedRemoteExpired, "the paid task outlived AnySolver's keeping"},
	{endedInterrupted, "interrupted"},
	{endedTimedOut, "the attempt timed out"},
	{endedPanicked, "a step panicked"},
	{endedExpired, "expired before a createTask"},
	{endedUnreadablePayload, "unreadable payload"},
	{endedUnreadableRecord, "unreadable record"},
	{endedRedelivered, "redelivered after its outcome"},
	{endedForeign, "not a solvequeue task"},
	{endedBudgetSpent, "budget spent"},
	{endedArchivedByAsynq, "archived by asynq"},
	{endedFairShare, "held for its key's fair share"},
}

// breakerSeen is what an account error did to the account breaker.
type breakerSeen int

const (
	breakerUntouched breakerSeen = iota // not an account error, or the breaker is disabled
	breakerOpened                       // this job's error opened the breaker
	breakerWasOpen                      // the breaker was open already: another job opened it
)

// ending is how one attempt ended: decide's input besides the job's record and payload.
type ending struct {
	kind    endingKind
	verdict classify.Verdict  // endedClassified, endedPollTrouble: the classifier's verdict
	info    enqueue.ErrorInfo // the error as met (already redacted); decide sets its Decision
	breaker breakerSeen       // endedClassified: an account error and the breaker
	err     error             // endedInterrupted, endedTimedOut, endedPanicked, endedUnreadable*: the cause
	raw     []byte            // endedUnreadableRecord: the record as found, kept for the operator
	what    string            // endedForeign: the task type; endedArchivedByAsynq: asynq's last error; endedFairShare: the key's name
	wait    time.Duration     // endedBudgetSpent: until the window frees room
	// trouble is the backoff of the poll before, for endedPollTrouble (0 on the first failure).
	trouble time.Duration
	// unsaved says the paid remote task's id has not landed in Redis yet (endedInterrupted).
	unsaved bool
}

// decisionFailover is the decision recorded when an attempt moves a job to its next provider.
const decisionFailover = metrics.DecisionFailover

// decideInput is everything decide reads.
type decideInput struct {
	record    jobwire.Record // the record as the attempt left it (counters and remote task updated)
	payload   jobwire.Payload
	providers []string // the job's failover list (empty: AnySolver chooses)
	ending    ending
	retried   int       // retries asynq has counted so far for this task (the record counts its own)
	maxRetry  int       // the retry count asynq was given for the task; 0: unknown
	now       time.Time // when the attempt ended
	jitter    float64   // a random number in [0, 1), for the backoff and throttle delays
}

// rules are the settings decide applies, fixed for a worker's life.
type rules struct {
	policy   *classify.Policy
	lifetime time.Duration // bounds the throttling of a job without a deadline
	holdWait time.Duration // the least wait of a job held by an open breaker
	// pollInterval is the least backoff of a failed poll of a paid task.
	pollInterval time.Duration
}

// The bounds of the backoff between failed polls of a paid task.
const (
	pollTroubleMin = 100 * time.Millisecond
	pollTroubleMax = 15 * time.Second
)

// budgetHoldMax bounds one hold of a job whose queue's budget is spent: the job looks again at
// least this often, so that a budget an operator raises (or a window that frees room early)
// is seen soon.
const budgetHoldMax = time.Minute

// fairHoldMin and fairHoldSpread bound the wait of a job held for its key's fair share: long
// enough for the held key's running jobs to make room, short enough that the job loses little
// when they do, spread so that the jobs held together do not come back together.
const (
	fairHoldMin    = time.Second
	fairHoldSpread = 2 * time.Second
)

// report says what apply counts and logs for a transition.
type report int

const (
	reportNothing     report = iota // handed back: the attempt did not end the job, nothing to say
	reportEnded                     // the job ended: counted as an outcome and logged once
	reportRescheduled               // a retry or throttle: counted by decision and code
	reportRedelivered               // a re-run of an ended job: logged, not counted again
	reportForeign                   // not our task: logged as a warning and archived
	reportPolling                   // the paid task is polled again: the attempt goes on
	reportHeld                      // handed back for its key's fair share: counted by key
)

// Transition is what one attempt's end does to a job. decide builds it; nothing edits it after.
type Transition struct {
	// State is the job's state after the attempt; "" when the job is handed back unchanged.
	State enqueue.State
	// Record is the record to write when Write is set (and the one a dead letter carries).
	Record jobwire.Record
	// Write says the record is saved. A terminal record must land before asynq is told; a
	// retrying one is best effort (the next attempt finds the remote task either way).
	Write bool
	// Delay is when asynq runs the next attempt (retrying, and a job handed back).
	Delay time.Duration
	// PollIn, when positive, says the attempt is not over: its paid remote task is polled again
	// after this wait. Nothing else of the transition applies then.
	PollIn time.Duration
	// Acked says the record must reach a replica before anything else is said: the job's error
	// opened the account breaker, whose opening is announced once the outcome is safe.
	Acked bool
	// SpendsRetry says asynq counts the attempt against the retry budget (its IsFailure).
	SpendsRetry bool
	// Archive says asynq archives the task instead of retrying it.
	Archive bool
	// DeadLetter says the durable dead-letter entry is written before the task is archived.
	DeadLetter bool
	// RawRecord is an unreadable record as found, kept in the dead-letter entry.
	RawRecord []byte
	// Report says what is counted and logged.
	Report report
	// Cause is the error behind the transition, or nil when solved; for a hand-back, the error
	// asynq sees wraps HandBack.
	Cause    *enqueue.ErrorInfo
	HandBack error
}

// budget is the job's retry budget (classify.Policy.RetryBudget): its own or the policy's, one
// retry short of asynq's MaxRetry (maxRetry, when known), so that decide ends the job, not asynq.
func (r rules) budget(p jobwire.Payload, maxRetry int) int {
	return r.policy.RetryBudget(p.MaxRetries, maxRetry)
}

// limit is when the job's time is up: its deadline, or its lifetime counted from its submission
// (from its first attempt, or now, for a payload that does not say when it was submitted),
// whichever comes first. Throttles and holds never reach past it.
func (r rules) limit(in decideInput) time.Time {
	base := in.payload.SubmittedAt
	if base.IsZero() {
		base = in.record.StartedAt
	}
	if base.IsZero() || base.After(in.now) {
		base = in.now
	}
	limit := base.Add(r.lifetime)
	if dl := in.payload.Deadline; !dl.IsZero() && dl.Before(limit) {
		limit = dl
	}
	return limit
}

// decide maps how an attempt ended to the job's transition. It is pure: no I/O, no clock, no
// randomness but in's jitter, and it never changes in.
func decide(r rules, in decideInput) Transition {
	rec := in.record // a copy; its pointers are replaced, never written through
	e := in.ending
	switch e.kind {
	case endedSolved:
		rec.State, rec.Error, rec.Remote, rec.FinishedAt = enqueue.StateSolved, nil, nil, in.now.UTC()
		rec.ExpiresAt = jobwire.TokenExpiresAt(in.payload.TaskType(), rec.FinishedAt)
		return Transition{State: rec.State, Record: rec, Write: true, Report: reportEnded}

	case endedClassified:
		if e.breaker == breakerWasOpen {
			info := e.info
			info.ErrorDescription += " (held by the account breaker)"
			return r.throttle(in, rec, info, max(r.holdWait, r.policy.ThrottleDelay(e.verdict, in.jitter)))
		}
		t := r.classified(in, rec, e.verdict, e.info)
		t.Acked = e.breaker == breakerOpened && t.Write
		return t

	case endedRemoteExpired:
		rec.Remote = nil // AnySolver forgot the task: the next attempt creates one
		return r.classified(in, rec, e.verdict, e.info)

	case endedPollTrouble:
		wait := min(max(2*e.trouble, r.pollInterval, pollTroubleMin), pollTroubleMax)
		wait = max(wait, e.verdict.Wait)
		wait += time.Duration(in.jitter * float64(wait) / 2)
		if dl := in.payload.Deadline; !dl.IsZero() && !in.now.Add(wait).Before(dl) {
			info := e.info
			info.ErrorDescription += " (then the job's deadline passed while its paid task was polled)"
			return ended(in, rec, enqueue.StateDead, info)
		}
		return Transition{PollIn: wait, Report: reportPolling}

	case endedInterrupted:
		t := Transition{HandBack: e.err, Delay: r.policy.RetryDelay(in.retried, in.jitter)}
		if rec.Remote != nil {
			t.Delay = 0 // the paid task is resumed at once, while AnySolver keeps it
			if e.unsaved {
				t.Record, t.Write = rec, true // its id must land before the job is handed back
			}
		}
		return t

	case endedTimedOut:
		return r.retry(in, rec, enqueue.ErrorInfo{ErrorCode: classify.CodeTimeout, Attempt: rec.Attempts,
			ErrorDescription: "the attempt's time ran out (" + errText(e.err) + ")"})

	case endedPanicked:
		return r.retry(in, rec, enqueue.ErrorInfo{ErrorCode: classify.CodeWorkerError, Attempt: rec.Attempts,
			ErrorDescription: "the worker failed on this job: " + errText(e.err)})

	case endedExpired:
		if rec.CreateTasks == 0 && rec.Error == nil {
			return ended(in, rec, enqueue.StateFailed, enqueue.ErrorInfo{ErrorCode: classify.CodeJobExpired,
				ErrorDescription: "the job's deadline passed before any attempt", Attempt: rec.Attempts})
		}
		// Something held the job (a spent budget, throttles, retries): it ends with what held it.
		info := enqueue.ErrorInfo{ErrorCode: classify.CodeJobExpired, ErrorDescription: "the job's deadline passed"}
		if rec.Error != nil {
			info = *rec.Error
			info.ErrorDescription += " (then the job's deadline passed)"
		}
		return ended(in, rec, enqueue.StateDead, info)

	case endedUnreadablePayload:
		return ended(in, rec, enqueue.StateFailed, enqueue.ErrorInfo{ErrorCode: classify.CodeInvalidPayload,
			ErrorDescription: errText(e.err), Attempt: rec.Attempts})

	case endedUnreadableRecord:
		t := ended(in, jobwire.Record{}, enqueue.StateDead, enqueue.ErrorInfo{ErrorCode: classify.CodeRecordUnreadable,
			ErrorDescription: fmt.Sprintf("the job's record in Redis cannot be read (%s); ended rather than risk paying AnySolver twice: the record as found is kept in the dead-letter entry", errText(e.err))})
		t.RawRecord = e.raw
		return t

	case endedRedelivered:
		t := Transition{State: rec.State, Record: rec, Report: reportRedelivered, Cause: rec.Error}
		if rec.State == enqueue.StateDead {
			// The dead-letter entry may be what failed to land the first time.
			t.DeadLetter, t.Archive = true, true
		}
		return t

	case endedBudgetSpent:
		info := enqueue.ErrorInfo{ErrorCode: classify.CodeBudgetSpent, Attempt: rec.Attempts,
			ErrorDescription: fmt.Sprintf("the queue's budget is spent for its window: held, not paid, until the window frees room (in %s)", e.wait.Round(time.Second))}
		return r.throttle(in, rec, info, min(max(e.wait, time.Second), budgetHoldMax))

	case endedArchivedByAsynq:
		if rec.State.Terminal() && rec.State != enqueue.StateDead {
			// asynq archived a job whose outcome was recorded: the record says how it ended.
			return Transition{State: rec.State, Record: rec, Report: reportRedelivered, Cause: rec.Error}
		}
		info := enqueue.ErrorInfo{ErrorCode: classify.CodeWorkerError,
			ErrorDescription: "asynq archived the task by itself: " + e.what, Attempt: rec.Attempts}
		if rec.State == enqueue.StateDead && rec.Error != nil {
			return Transition{State: rec.State, Record: rec, DeadLetter: true, Report: reportRedelivered, Cause: rec.Error}
		}
		if rec.Error != nil {
			info = *rec.Error
			info.ErrorDescription += " (then asynq archived the task by itself: " + e.what + ")"
		}
		t := ended(in, rec, enqueue.StateDead, info)
		t.Archive = false // it is archived already
		return t

	case endedFairShare:
		if dl := in.payload.Deadline; !dl.IsZero() && !in.now.Before(dl) {
			// Past its deadline the job ends as an expired one does; it is not held again.
			return decide(r, decideInput{record: in.record, payload: in.payload, providers: in.providers,
				ending: ending{kind: endedExpired}, retried: in.retried, maxRetry: in.maxRetry, now: in.now, jitter: in.jitter})
		}
		// Nothing was paid and nothing is recorded: the record stays as it was, and asynq's
		// error message (the web UI's last error) says why the job waits.
		return Transition{HandBack: &FairShareError{Key: e.what},
			Delay: fairHoldMin + time.Duration(in.jitter*float64(fairHoldSpread)), Report: reportHeld}

	default: // endedForeign
		info := enqueue.ErrorInfo{ErrorCode: classify.CodeInvalidPayload, Decision: string(classify.Dead),
			ErrorDescription: fmt.Sprintf("task type %q is not a solvequeue job", e.what)}
		return Transition{Archive: true, Report: reportForeign, Cause: &info}
	}
}

// classified applies the classifier's verdict on an error: failover to the job's next provider,
// then the code's own decision.
func (r rules) classified(in decideInput, rec jobwire.Record, v classify.Verdict, info enqueue.ErrorInfo) Transition {
	if classify.ProviderScoped(v.Code) && len(in.providers) > 1 {
		if next := rec.ProviderIndex + 1; next < len(in.providers) {
			return failover(in, rec, info, in.providers, next)
		}
		// Every provider failed: the code's own decision applies, and a next try starts
		// from the first provider again.
		rec.ProviderIndex = 0
	}
	switch v.Decision {
	case classify.Retry:
		return r.retry(in, rec, info)
	case classify.Throttle:
		return r.throttle(in, rec, info, max(v.Wait, r.policy.ThrottleDelay(v, in.jitter)))
	case classify.Failed:
		return ended(in, rec, enqueue.StateFailed, info)
	default:
		return ended(in, rec, enqueue.StateDead, info)
	}
}

// failover sends the job's next attempt at once to its next provider, without spending the retry
// budget: the list of providers bounds it.
func failover(in decideInput, rec jobwire.Record, info enqueue.ErrorInfo, providers []string, next int) Transition {
	info.Decision = decisionFailover
	info.ErrorDescription += breaker.FailoverNote(providers, next)
	rec = withError(in, rec, info)
	rec.State, rec.ProviderIndex = enqueue.StateRetrying, next
	return Transition{State: rec.State, Record: rec, Write: true, Report: reportRescheduled, Cause: rec.Error}
}

// retry schedules another attempt with backoff, or ends the job as dead when its retry budget
// is spent or its deadline would pass before the next try.
func (r rules) retry(in decideInput, rec jobwire.Record, info enqueue.ErrorInfo) Transition {
	// The retries spent: asynq's count, or the record's where it is ahead (a worker died after
	// saving a retry and before asynq heard of it; a lost lease spends none of asynq's).
	spent := max(in.retried, in.record.Retries)
	if budget := r.budget(in.payload, in.maxRetry); spent >= budget {
		info.ErrorDescription += fmt.Sprintf(" (retry budget of %d spent)", budget)
		return ended(in, rec, enqueue.StateDead, info)
	}
	delay := r.policy.RetryDelay(spent, in.jitter)
	if dl := in.payload.Deadline; !dl.IsZero() && !in.now.Add(delay).Before(dl) {
		info.ErrorDescription += " (the job's deadline passes before the next try)"
		return ended(in, rec, enqueue.StateDead, info)
	}
	info.Decision = string(classify.Retry)
	rec = withError(in, rec, info)
	rec.State = enqueue.StateRetrying
	rec.Retries++
	return Transition{State: rec.State, Record: rec, Write: true, Delay: delay, SpendsRetry: true,
		Report: reportRescheduled, Cause: rec.Error}
}

// throttle schedules another attempt after wait without spending the retry budget, or ends the
// job as dead when its deadline (or, without one, its lifetime) passes first.
func (r rules) throttle(in decideInput, rec jobwire.Record, info enqueue.ErrorInfo, wait time.Duration) Transition {
	if !in.now.Add(wait).Before(r.limit(in)) {
		info.ErrorDescription += " (the job's deadline passes before the next try)"
		return ended(in, rec, enqueue.StateDead, info)
	}
	info.Decision = string(classify.Throttle)
	rec = withError(in, rec, info)
	rec.State = enqueue.StateRetrying
	rec.Throttles++
	return Transition{State: rec.State, Record: rec, Write: true, Delay: wait, Report: reportRescheduled, Cause: rec.Error}
}

// ended ends the job in a terminal state: failed completes the task with its record kept; dead
// also archives it, after its durable dead-letter entry.
func ended(in decideInput, rec jobwire.Record, state enqueue.State, info enqueue.ErrorInfo) Transition {
	switch state {
	case enqueue.StateFailed:
		info.Decision = string(classify.Failed)
	case enqueue.StateDead:
		info.Decision = string(classify.Dead)
	}
	rec = withError(in, rec, info)
	rec.State, rec.Remote, rec.FinishedAt = state, nil, in.now.UTC()
	dead := state == enqueue.StateDead
	return Transition{State: state, Record: rec, Write: true, Archive: dead, DeadLetter: dead,
		Report: reportEnded, Cause: rec.Error}
}

// withError returns rec with info, stamped with the attempt's end, as its current error and the
// newest entry of its history; the input's history is not changed.
func withError(in decideInput, rec jobwire.Record, info enqueue.ErrorInfo) jobwire.Record {
	info.At = in.now.UTC()
	return rec.WithError(info)
}

// FairShareError is why a job was handed back for its gateway key's fair share of a worker's
// slots: the text asynq keeps as the task's last error.
type FairShareError struct {
	Key string // the gateway key's name; "" for jobs submitted without one
}

func (e *FairShareError) Error() string {
	if e.Key == "" {
		return "held: the jobs without a gateway key hold their fair share of this worker's slots"
	}
	return fmt.Sprintf("held: key %q holds its fair share of this worker's slots", e.Key)
}

func errText(err error) string {
	if err == nil {
		return "unknown reason"
	}
	return err.Error()
}
