package worker

import (
	"fmt"
	"time"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
)

// This file is the whole of "what happens to a job when an attempt ends": decide is a pure
// function from how the attempt ended (and the job's record, payload, retry count, the clock and
// the policy) to a Transition, and apply (outcome.go) performs one. A new way for an attempt to
// end is a new endingKind and a new case in decide, never a branch somewhere else. The README's
// state and decision tables are the documentation; TestDecideFollowsTheREADME ties them to this
// function.

// endingKind is how an attempt ended, as the handler saw it.
type endingKind int

const (
	// endedSolved: AnySolver returned a solution.
	endedSolved endingKind = iota
	// endedClassified: AnySolver or the transport answered with an error; the verdict says
	// what it means.
	endedClassified
	// endedHeld: an account error met a breaker that another job had already opened: the job
	// is held, without spending a retry, until the breaker resumes.
	endedHeld
	// endedInterrupted: shutdown, the attempt's timeout, or Redis trouble. The record (with any
	// paid remote task) stays as last saved, and asynq gets the job back.
	endedInterrupted
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
)

// ending is how one attempt ended: decide's input besides the job's record and payload.
type ending struct {
	kind    endingKind
	verdict classify.Verdict  // endedClassified, endedHeld: the classifier's verdict
	info    enqueue.ErrorInfo // the error as met (already redacted); decide sets its Decision
	err     error             // endedInterrupted: the cause; endedUnreadable*: why it cannot be read
	raw     []byte            // endedUnreadableRecord: the record as found, kept for the operator
	what    string            // endedForeign: the task type
	wait    time.Duration     // endedBudgetSpent: until the window frees room
}

// decisionFailover is the decision recorded when an attempt moves a job to its next provider.
const decisionFailover = "failover"

// decideInput is everything decide reads.
type decideInput struct {
	record    enqueue.Record // the record as the attempt left it (counters and remote task updated)
	payload   enqueue.Payload
	providers []string // the job's failover list (empty: AnySolver chooses)
	ending    ending
	retried   int       // retries asynq has counted so far for this task
	now       time.Time // when the attempt ended
	jitter    float64   // a random number in [0, 1), for the backoff and throttle delays
}

// rules are the settings decide applies, fixed for a worker's life.
type rules struct {
	policy   *classify.Policy
	lifetime time.Duration // bounds the throttling of a job without a deadline
	holdWait time.Duration // the least wait of a job held by an open breaker
}

// budgetHoldMax bounds one hold of a job whose queue's budget is spent: the job looks again at
// least this often, so that a budget an operator raises (or a window that frees room early)
// is seen soon.
const budgetHoldMax = time.Minute

// report says what apply counts and logs for a transition.
type report int

const (
	reportNothing     report = iota // handed back: the attempt did not end the job, nothing to say
	reportEnded                     // the job ended: counted as an outcome and logged once
	reportRescheduled               // a retry or throttle: counted by decision and code
	reportRedelivered               // a re-run of an ended job: logged, not counted again
	reportForeign                   // not our task: logged as a warning and archived
)

// Transition is what one attempt's end does to a job. decide builds it; nothing edits it after.
type Transition struct {
	// State is the job's state after the attempt; "" when the job is handed back unchanged.
	State enqueue.State
	// Record is the record to write when Write is set (and the one a dead letter carries).
	Record enqueue.Record
	// Write says the record is saved. A terminal record must land before asynq is told; a
	// retrying one is best effort (the next attempt finds the remote task either way).
	Write bool
	// Delay is when asynq runs the next attempt (retrying, and a job handed back).
	Delay time.Duration
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

// budget is the job's retry budget: its own, or the policy's.
func (r rules) budget(p enqueue.Payload) int {
	if p.MaxRetries != nil {
		return *p.MaxRetries
	}
	return r.policy.MaxRetries()
}

// decide maps how an attempt ended to the job's transition. It is pure: no I/O, no clock, no
// randomness but in's jitter, and it never changes in.
func decide(r rules, in decideInput) Transition {
	rec := in.record // a copy; its pointers are replaced, never written through
	e := in.ending
	switch e.kind {
	case endedSolved:
		rec.State, rec.Error, rec.Remote, rec.FinishedAt = enqueue.StateSolved, nil, nil, in.now.UTC()
		return Transition{State: rec.State, Record: rec, Write: true, Report: reportEnded}

	case endedClassified:
		if classify.ProviderScoped(e.verdict.Code) && len(in.providers) > 1 {
			if next := rec.ProviderIndex + 1; next < len(in.providers) {
				return failover(in, rec, e.info, in.providers, next)
			}
			// Every provider failed: the code's own decision applies, and a next try starts
			// from the first provider again.
			rec.ProviderIndex = 0
		}
		switch e.verdict.Decision {
		case classify.Retry:
			return r.retry(in, rec, e.info)
		case classify.Throttle:
			return r.throttle(in, rec, e.info, max(e.verdict.Wait, r.policy.ThrottleDelay(e.verdict, in.jitter)))
		case classify.Failed:
			return ended(in, rec, enqueue.StateFailed, e.info)
		default:
			return ended(in, rec, enqueue.StateDead, e.info)
		}

	case endedHeld:
		info := e.info
		info.ErrorDescription += " (held by the account breaker)"
		return r.throttle(in, rec, info, max(r.holdWait, r.policy.ThrottleDelay(e.verdict, in.jitter)))

	case endedInterrupted:
		return Transition{HandBack: e.err, SpendsRetry: true, Delay: r.policy.RetryDelay(in.retried, in.jitter)}

	case endedExpired:
		if rec.CreateTasks == 0 {
			return ended(in, rec, enqueue.StateFailed, enqueue.ErrorInfo{ErrorCode: classify.CodeJobExpired,
				ErrorDescription: "the job's deadline passed before any attempt", Attempt: rec.Attempts})
		}
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
		t := ended(in, enqueue.Record{}, enqueue.StateDead, enqueue.ErrorInfo{ErrorCode: classify.CodeRecordUnreadable,
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

	default: // endedForeign
		info := enqueue.ErrorInfo{ErrorCode: classify.CodeInvalidPayload, Decision: string(classify.Dead),
			ErrorDescription: fmt.Sprintf("task type %q is not a solvequeue job", e.what)}
		return Transition{Archive: true, Report: reportForeign, Cause: &info}
	}
}

// failover sends the job's next attempt at once to its next provider, without spending the retry
// budget: the list of providers bounds it.
func failover(in decideInput, rec enqueue.Record, info enqueue.ErrorInfo, providers []string, next int) Transition {
	info.Decision = decisionFailover
	info.ErrorDescription += failoverNote(providers, next)
	rec = withError(in, rec, info)
	rec.State, rec.ProviderIndex = enqueue.StateRetrying, next
	return Transition{State: rec.State, Record: rec, Write: true, Report: reportRescheduled, Cause: rec.Error}
}

// retry schedules another attempt with backoff, or ends the job as dead when its retry budget
// is spent or its deadline would pass before the next try.
func (r rules) retry(in decideInput, rec enqueue.Record, info enqueue.ErrorInfo) Transition {
	if budget := r.budget(in.payload); in.retried >= budget {
		info.ErrorDescription += fmt.Sprintf(" (retry budget of %d spent)", budget)
		return ended(in, rec, enqueue.StateDead, info)
	}
	delay := r.policy.RetryDelay(in.retried, in.jitter)
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
func (r rules) throttle(in decideInput, rec enqueue.Record, info enqueue.ErrorInfo, wait time.Duration) Transition {
	limit := in.payload.Deadline
	if limit.IsZero() {
		limit = in.payload.SubmittedAt.Add(r.lifetime)
	}
	if !in.now.Add(wait).Before(limit) {
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
func ended(in decideInput, rec enqueue.Record, state enqueue.State, info enqueue.ErrorInfo) Transition {
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
func withError(in decideInput, rec enqueue.Record, info enqueue.ErrorInfo) enqueue.Record {
	info.At = in.now.UTC()
	return rec.WithError(info)
}

func errText(err error) string {
	if err == nil {
		return "unknown reason"
	}
	return err.Error()
}
