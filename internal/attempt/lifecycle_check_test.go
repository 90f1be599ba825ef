package attempt

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"pgregory.net/rapid"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/poll"
)

// The invariants of the lifecycle model (lifecycle_model_test.go): judge reads one attempt's end
// against the answers the job got; check runs after every step.

// judge checks one attempt's end against the answers the job got in it.
func (m *lifecycle) judge(j *mjob, before, rec jobwire.Record, err error, last answer, answered, trouble bool) {
	if trouble && err != nil && !before.State.Terminal() && rec.State == before.State && isFailure(err) &&
		!errors.Is(err, asynq.SkipRetry) && !answered {
		m.violation(j, "redis-trouble-spends-retry", "an attempt interrupted by Redis trouble spent a retry (%v)", err)
	}
	if before.State.Terminal() {
		m.noteOutcome(j, before)
		if rec.State != before.State || codeOf(rec) != codeOf(before) {
			m.violation(j, "", "a redelivered job's outcome changed from %s %s to %s %s", before.State, codeOf(before), rec.State, codeOf(rec))
		}
		if answered {
			m.violation(j, "", "a redelivered job with a recorded outcome called AnySolver (%v)", last)
		}
		return
	}
	m.noteOutcome(j, rec)
	code, decision := m.expected(last)
	switch rec.State {
	case enqueue.StateSolved:
		if !answered || last.kind != ansReady {
			m.violation(j, "", "solved without AnySolver's solution (last answer %s)", lastText(last, answered))
		}
	case enqueue.StateFailed, enqueue.StateDead:
		got := codeOf(rec)
		switch {
		case got == classify.CodeBudgetSpent:
			// Held by the spent budget until its deadline (or lifetime) passes: dead.
			if rec.State != enqueue.StateDead {
				m.violation(j, "", "ended %s BUDGET_SPENT", rec.State)
			}
		case !answered && (got == classify.CodeJobExpired || rec.State == enqueue.StateDead && got == codeOf(before)):
			// The deadline passed before this attempt could create a task: failed JOB_EXPIRED,
			// or dead with the error met before (decide's endedExpired). The deadline is the
			// contract's: a redrive gives a fresh one.
			if now := m.clock.Now(); j.deadline.IsZero() || now.Before(j.deadline) {
				defect := ""
				if dl := m.payloadDeadline(j); !j.redrivenAt.IsZero() && !dl.IsZero() && !now.Before(dl) {
					defect = "redrive-keeps-deadline"
				}
				m.violation(j, defect, "ended %s %s as expired before its deadline (%s; redriven at %s)", rec.State, got,
					j.deadline.Format(time.TimeOnly), j.redrivenAt.Format(time.TimeOnly))
			}
		case !answered:
			m.violation(j, "", "ended %s %s without an answer from AnySolver in this attempt", rec.State, got)
		case got == classify.CodeTaskNotFound && code != got:
			// The worker's own verdict on a remote task it stopped polling (its life or the poll
			// cap): a retry's code, so dead only with the retry budget or the deadline spent.
			if rec.State != enqueue.StateDead {
				m.violation(j, "", "a remote task given up ended the job %s", rec.State)
			}
		case got != code:
			m.violation(j, "", "ended %s with code %s, but AnySolver last answered %v (code %s)", rec.State, got, last, code)
		case rec.State == enqueue.StateFailed && decision != classify.Failed:
			m.violation(j, "", "ended failed on %s, whose decision is %s", got, decision)
		case rec.State == enqueue.StateDead && decision == classify.Failed:
			m.violation(j, "", "ended dead on %s, whose decision is failed", got)
		}
	case enqueue.StateRetrying:
		held := m.breakerOn && m.policy.Classify(classify.Error{ErrorID: last.errorID, ErrorCode: code}).Account
		if answered && (decision == classify.Failed || decision == classify.Dead) && !held &&
			!(len(j.providers) > 1 && classify.ProviderScoped(code)) {
			m.violation(j, "", "retrying after %v, whose decision is %s", last, decision)
		}
		if answered && last.kind == ansReady {
			m.violation(j, "", "retrying after a solution")
		}
	}
}

// noteOutcome notes the outcome the job's record holds, once: a second, different one is a job
// that ended twice.
func (m *lifecycle) noteOutcome(j *mjob, rec jobwire.Record) {
	if !rec.State.Terminal() {
		return
	}
	if j.final != "" && (j.final != rec.State || j.finalCode != codeOf(rec)) {
		m.violation(j, "", "ended twice: %s %s, then %s %s", j.final, j.finalCode, rec.State, codeOf(rec))
	}
	if j.final == "" {
		j.outcomes++
		j.endedAt = rec.FinishedAt
	}
	j.final, j.finalCode = rec.State, codeOf(rec)
}

// check runs the invariants that hold after every step.
func (m *lifecycle) check(t *rapid.T) {
	m.fake.mu.Lock()
	doublePay := slices.Clone(m.fake.violations)
	m.fake.violations = nil
	m.fake.mu.Unlock()
	for _, v := range doublePay {
		j := m.job(strings.Fields(v)[1])
		defect := ""
		switch {
		case m.pollCapped(j):
			defect = "poll-cap-pays-again"
		case j.saveOutage:
			defect = "lost-remote-after-failed-save"
		}
		if j.tainted == "" {
			m.violation(j, defect, "%s", v)
		}
	}
	now := m.clock.Now()
	if m.budgetCap > 0 {
		// The ledger rolls by buckets of a sixtieth of the window: a spend leaves it up to a
		// bucket late, never early.
		if n := m.paidSince(now.Add(-budgetWindow + budgetWindow/60)); n > m.budgetCap {
			m.violation(nil, "", "%d createTasks paid within the budget's window of %s, cap %d", n, budgetWindow, m.budgetCap)
		}
	}
	m.checkRivalCap()
	if state, err := breaker.Read(m.ctx, m.rc); err == nil && state.ID != "" &&
		m.rc.Exists(m.ctx, "asynq:{"+modelQueue+"}:paused").Val() == 0 && !m.tripCut {
		m.violation(nil, "", "the breaker is open (%s) and the queue is not paused", state.Code)
	}
	for _, j := range m.jobs {
		if j.tainted != "" {
			continue
		}
		rec := m.record(j)
		dl := m.rc.HExists(m.ctx, keys.DeadLetters(modelQueue), keys.DeadLetterField(modelQueue, j.id)).Val()
		if budget := min(j.budget, j.asynqMax-1); rec.Retries > budget {
			m.violation(j, "", "%d retries spent, budget %d (asynq's MaxRetry %d)", rec.Retries, budget, j.asynqMax)
		}
		if j.final != "" && rec.State != j.final {
			m.violation(j, "", "its outcome %s changed to %s", j.final, rec.State)
		}
		switch j.state {
		case aCompleted:
			if rec.State != enqueue.StateSolved && rec.State != enqueue.StateFailed {
				m.violation(j, "", "asynq completed it with record %s", rec.State)
			}
			if dl {
				m.violation(j, "", "a dead-letter entry for a %s job", rec.State)
			}
		case aArchived:
			if rec.State != enqueue.StateDead || !dl {
				m.violation(j, "", "archived with record %s and dead-letter entry %v", rec.State, dl)
			}
		case aPending:
			if rec.State.Terminal() && !j.replay {
				m.violation(j, "", "record %s while asynq will run it again", rec.State)
			}
			if !rec.State.Terminal() && dl {
				m.violation(j, "", "a dead-letter entry while the job is %s", rec.State)
			}
			if j.nextAt.Sub(now) > scheduleBound {
				m.violation(j, "", "its next attempt is %s away", j.nextAt.Sub(now))
			}
			if j.throttled {
				limit := j.deadline
				if limit.IsZero() {
					limit = j.lifeStart.Add(modelLifetime)
				}
				if j.nextAt.After(limit.Add(2 * time.Second)) {
					m.violation(j, "", "throttled past its deadline: next try %s, limit %s", j.nextAt.Format(time.TimeOnly), limit.Format(time.TimeOnly))
				}
			}
		}
		m.checkCallback(j, rec)
	}
}

// checkCallback: every outcome of a job with a callbackUrl has its own delivery, delivered, still
// queued, or given up after the callback window; a queued one tells the outcome it belongs to, and
// the newest outcome the receiver heard of, once the last is delivered, tells the job's final one.
func (m *lifecycle) checkCallback(j *mjob, rec jobwire.Record) {
	if !j.callback || (j.state != aCompleted && j.state != aArchived) {
		return
	}
	want := outcomeSeen(rec)
	cb := j.cbs[j.outcomes]
	switch {
	case cb == nil:
		m.violation(j, "", "outcome %d (%+v) was never queued for a callback (queued: %d deliveries)", j.outcomes, want, len(j.cbs))
	case cb.state == aPending:
		info, err := asynq.NewInspectorFromRedisClient(m.rc).GetTaskInfo(callback.Queue, cbID(j, j.outcomes))
		if err != nil {
			m.violation(j, "", "the callback task of outcome %d is gone: %v", j.outcomes, err)
			return
		}
		var p callback.Payload
		_ = json.Unmarshal(info.Payload, &p)
		var b callbackBodySeen
		_ = json.Unmarshal(p.Body, &b)
		if b.OutcomeSeq != j.outcomes || !b.seen().tells(want) {
			m.violation(j, "", "the queued callback of outcome %d tells outcome %d: %+v; the outcome is %+v", j.outcomes, b.OutcomeSeq, b.seen(), want)
		}
	case cb.delivered:
		seq, seen := m.recv.latest(j.id)
		if seq != j.outcomes || len(seen) == 0 || !seen[len(seen)-1].tells(want) {
			m.violation(j, "", "the newest callback delivered is outcome %d's, telling %+v; the final outcome is %d: %+v", seq, seen, j.outcomes, want)
		}
	case cb.abandoned:
		if m.clock.Now().Sub(j.endedAt) < callback.WindowDefault-time.Minute {
			m.violation(j, "", "its callback was given up %s after the outcome, within the window", m.clock.Now().Sub(j.endedAt))
		}
	}
	for seq := 1; seq < j.outcomes; seq++ {
		if j.cbs[seq] == nil {
			m.violation(j, "", "outcome %d of %d was never queued for a callback", seq, j.outcomes)
		}
	}
}

func (m *lifecycle) job(id string) *mjob {
	for _, j := range m.jobs {
		if j.id == id {
			return j
		}
	}
	m.t.Fatalf("no job %s", id)
	return nil
}

// pollCapped says whether the job's last attempt gave up a remote task after poll.MaxPollsPerTask polls.
func (m *lifecycle) pollCapped(j *mjob) bool {
	rec := m.record(j)
	for _, e := range rec.Errors {
		if e.ErrorCode == classify.CodeTaskNotFound && strings.Contains(e.ErrorDescription, fmt.Sprintf("%d polls", poll.MaxPollsPerTask)) {
			return true
		}
	}
	return false
}

func (m *lifecycle) payloadDeadline(j *mjob) time.Time {
	p, err := jobwire.DecodePayload(m.payload(j))
	if err != nil {
		m.t.Fatalf("payload of %s: %v", j.id, err)
	}
	return p.Deadline
}

// paidSince counts the createTasks the fake AnySolver took after from.
func (m *lifecycle) paidSince(from time.Time) int {
	m.fake.mu.Lock()
	defer m.fake.mu.Unlock()
	n := 0
	for _, r := range m.fake.remotes {
		if r.created.After(from) {
			n++
		}
	}
	return n
}
