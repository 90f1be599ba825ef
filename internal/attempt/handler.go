package attempt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/fairshare"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/poll"
	"github.com/solvequeue/solvequeue/internal/quota"
	"github.com/solvequeue/solvequeue/internal/record"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// resumeMargin keeps a worker from resuming a remote task that AnySolver is about to forget.
const resumeMargin = 10 * time.Second

// Handler is the anysolver:solve handler: one call of ProcessTask is one attempt of one job.
type Handler struct {
	rules     rules
	budgets   *ledger.Ledger
	providers *breaker.Providers
	policy    *policyfile.Policy
	anysolver *anysolver.Client
	store     *record.Store
	poller    *poll.Poller
	breaker   *breaker.Breaker // nil when disabled
	observer  metrics.Observer
	log       *slog.Logger
	now       func() time.Time
	jitter    func() float64
	remoteTTL time.Duration
	running   inflight            // attempts in progress, for Shutdown's drain
	steps     *steps              // steps.go: the bound on steps running at once, one per AnySolver connection
	waits     *waits              // waits.go: the attempts waiting for their next poll
	callbacks *callback.Callbacks // schedules a job's callback when it ends (callback.go); runs callback tasks
	share     *fairshare.Share    // the slots each gateway key's jobs hold; nil admits every job
	quotas    *quota.Store        // the gateway keys' quotas, told when a key's job is taken and ends (quota.go)
}

// attempt is the state of one handler run.
type attempt struct {
	id, queue string
	retried   int
	maxRetry  int // asynq's retry limit for the task
	raw       []byte
	payload   jobwire.Payload
	rec       jobwire.Record
	started   time.Time
	solveTime time.Duration
	// polling is the paid remote task being polled, nil when none is (or no more).
	polling *polling
	// result is how the attempt ended, once polling is nil: a pointer, since an attempt waiting
	// on its remote task has no ending yet and thousands wait at once.
	result *ending
	// payloadDropped says payload was let go while the remote task is polled (dropPayload).
	payloadDropped bool
	// stopSaving ends keepSaving's background tries, when the remote id's first save failed.
	stopSaving func()
	// decided is the attempt's transition when a step decided it already (a failed poll whose
	// backoff would pass the deadline); else finish decides from result.
	decided *Transition
	// concluding says the attempt's outcome is being written (conclude): a panic then is not
	// the attempt's ending but asynq's to recover.
	concluding bool
	// breakerNews is the account breaker this attempt's error opened, announced once the
	// attempt's outcome is written (apply).
	breakerNews *breaker.News
	// releaseSlot gives back the attempt's slot in the fair share, once it ends; nil when it
	// took none.
	releaseSlot func()

	// How the attempt moves on (machine.go): ctx is asynq's for the job, and until the attempt's
	// own deadline before asynq's (zero: none), which each step's context carries (stepContext);
	// end receives how it ended, once; timer runs its next poll, once it waited for one. While it
	// waits, it is on waits' list (waits.go), which guards waiting, prevWait and nextWait:
	// whoever takes the wait (the timer or the watch on ctx and until) runs the next step.
	ctx                context.Context
	until              time.Time
	end                chan<- attemptEnd
	timer              *time.Timer
	waiting            bool
	prevWait, nextWait *attempt
}

// polling is the state of a paid remote task's polling between two polls.
type polling struct {
	id           anysolver.TaskID
	created      time.Time
	typ          string
	delay        time.Duration // before the next poll
	lastBusy     time.Duration // the last "processing" answer, after createTask
	troubleDelay time.Duration // the backoff after the last failed poll, 0 after a good one
	polls        int
}

// stopPolling ends the attempt's polling with e.
func (a *attempt) stopPolling(e ending) {
	a.polling, a.result = nil, &e
}

// begin runs the attempt up to its first wait: it reads the record and the job, and resumes or
// creates the remote task. It leaves a.polling set when a paid remote task is to be polled, else
// the attempt's ending in a.result.
func (h *Handler) begin(ctx context.Context, a *attempt, m taskMeta, t *asynq.Task) {
	a.raw, a.started = t.Payload(), h.now()
	a.id, a.queue, a.retried, a.maxRetry = m.id, m.queue, m.retried, m.maxRetry
	if t.Type() != jobwire.TaskType {
		a.stopPolling(ending{kind: endedForeign, what: t.Type()})
		return
	}
	rec, err := h.store.Load(ctx, a.queue, a.id)
	var unreadable *record.UnreadableError
	switch {
	case errors.As(err, &unreadable):
		h.log.Error("the job's record cannot be read: ending it dead rather than risk paying AnySolver twice",
			"job_id", a.id, "queue", a.queue, "err", unreadable.Err)
		a.payload, _ = jobwire.DecodePayload(a.raw)
		a.stopPolling(ending{kind: endedUnreadableRecord, err: unreadable.Err, raw: unreadable.Raw})
		return
	case err != nil:
		a.stopPolling(ending{kind: endedInterrupted, err: err})
		return
	}
	a.rec = rec
	if rec.State.Terminal() {
		a.stopPolling(ending{kind: endedRedelivered})
		return
	}
	p, err := jobwire.DecodePayload(a.raw)
	if err != nil {
		a.stopPolling(ending{kind: endedUnreadablePayload, err: err})
		return
	}
	a.payload = p
	h.quotaTaken(ctx, a)
	if e := h.solve(ctx, a); a.polling == nil {
		a.stopPolling(e)
	}
}

// finish ends the attempt as a.result says: the record, the dead letter, metrics and the log.
//
// A paid remote task whose id has not landed in Redis yet (its first save failed) is written with
// the hand-back of an interrupted attempt, and keepSaving goes on trying meanwhile: only an
// outcome that ends the job, written itself, stops it.
func (h *Handler) finish(ctx context.Context, a *attempt) error {
	e := *a.result
	if e.kind == endedSolved && a.rec.Provider != "" {
		h.providers.Succeeded(ctx, a.rec.Provider)
		h.observer.ProviderResult(a.rec.Provider, "", a.solveTime)
	}
	e.unsaved = a.stopSaving != nil
	var t Transition
	if a.decided != nil {
		t = *a.decided // a step decided already
	} else {
		t = h.decide(a, e)
	}
	if a.stopSaving != nil && t.HandBack == nil {
		a.stopSaving()
	}
	return h.apply(ctx, a, t)
}

// chooseProvider picks the provider of the attempt's createTask from the job's failover list,
// skipping those whose breaker is open, and records it; "" lets AnySolver choose.
func (h *Handler) chooseProvider(ctx context.Context, a *attempt) string {
	list := breaker.ProvidersOf(a.payload, a.queue, h.policy)
	if len(list) == 0 {
		return ""
	}
	a.rec.ProviderIndex = h.providers.Pick(ctx, list, a.rec.ProviderIndex)
	provider := list[a.rec.ProviderIndex]
	a.rec.Provider = provider
	if n := len(a.rec.ProvidersTried); n == 0 || a.rec.ProvidersTried[n-1] != provider {
		a.rec.ProvidersTried = append(a.rec.ProvidersTried, provider)
	}
	return provider
}

// solve runs the attempt and says how it ended.
func (h *Handler) solve(ctx context.Context, a *attempt) ending {
	now := h.now()
	if a.rec.StartedAt.IsZero() {
		a.rec.StartedAt = now.UTC()
	}
	if r := a.rec.Remote; r != nil && now.Sub(r.CreatedAt) < h.remoteTTL-resumeMargin {
		if id, err := anysolver.ParseTaskID(r.TaskID); err == nil {
			a.rec.Attempts++
			a.releaseSlot = h.share.Take(a.payload.KeyName) // a paid task is never held: it counts
			h.log.Info("resuming a paid AnySolver task instead of creating another",
				"job_id", a.id, "queue", a.queue, "remote_task_id", id.String(), "age", now.Sub(r.CreatedAt).Round(time.Second))
			h.startPolling(a, id, r.CreatedAt, true)
			return ending{}
		}
	}
	a.rec.Remote = nil
	if dl := a.payload.Deadline; !dl.IsZero() && !now.Before(dl) {
		return ending{kind: endedExpired}
	}
	// Before anything is loaded, reserved or paid: a job whose key holds its fair share of the
	// slots while they run short is handed back (decide's endedFairShare).
	release, admitted := h.share.Admit(a.payload.KeyName)
	if !admitted {
		return ending{kind: endedFairShare, what: a.payload.KeyName}
	}
	a.releaseSlot = release
	task := a.payload.Task
	if a.payload.BodyRef != "" {
		body, err := h.store.LoadBody(ctx, a.payload.BodyRef)
		if err != nil {
			return ending{kind: endedUnreadablePayload, err: err}
		}
		task = maps.Clone(task)
		task["body"] = body
	}
	if err := ctx.Err(); err != nil {
		// asynq gave the job back (shutdown, timeout) before anything was paid: pay nothing.
		return stoppedBy(err)
	}
	if spent, wait, err := h.reserve(ctx, a); err != nil {
		return ending{kind: endedInterrupted, err: err}
	} else if spent {
		return ending{kind: endedBudgetSpent, wait: wait}
	}
	provider := h.chooseProvider(ctx, a)
	a.rec.Attempts++
	// A createTask is paid: once sent, it is seen through and its id recorded even if the
	// worker is shutting down, so that the next worker resumes it instead of paying again.
	callCtx := context.WithoutCancel(ctx)
	began := h.now()
	res, err := h.anysolver.CreateTask(callCtx, anysolver.CreateTaskRequest{Task: task, Provider: provider, Settings: a.payload.Settings})
	h.observer.Called(string(classify.CallCreateTask), callOutcome(err), h.now().Sub(began))
	a.rec.CreateTasks++
	if err != nil {
		if _, answered := errors.AsType[*anysolver.APIError](err); answered {
			h.settle(ctx, a, 0) // AnySolver refused the task: nothing was created, nothing is charged
		} else {
			a.rec.Budget = nil // whether the task was created is unknown: its estimate stands
		}
		return h.classified(ctx, a, classify.CallCreateTask, err)
	}
	if res.Ready {
		a.rec.Solution, a.rec.Cost = res.Solution, res.Cost
		h.settle(ctx, a, res.Cost)
		return ending{kind: endedSolved}
	}
	rawID, err := json.Marshal(res.TaskID)
	if err != nil {
		return ending{kind: endedInterrupted, err: fmt.Errorf("encode remote task id: %w", err)}
	}
	a.rec.Remote = &jobwire.Remote{TaskID: rawID, CreatedAt: began.UTC()}
	if err := h.store.SaveAcked(ctx, a.queue, a.id, &a.rec); err != nil {
		// Polling goes on from memory, and the record is retried meanwhile: only a crash
		// before Redis answers again would lose the remote id.
		h.log.Error("could not record the remote task id before polling; retrying while polling",
			"job_id", a.id, "err", err)
		a.stopSaving = h.keepSaving(a.queue, a.id, a.rec, began.Add(h.remoteTTL))
	}
	h.startPolling(a, res.TaskID, began, false)
	return ending{}
}

// keepSaving goes on trying, in the background, to record a paid remote task whose first save
// failed (Redis hung or restarting), so that a crash after Redis answers again still finds the id.
// stop ends the tries and waits for them; finish calls it before the attempt's outcome is written.
// The tries end at until, when AnySolver forgets the task and its id is worth nothing.
func (h *Handler) keepSaving(queue, id string, rec jobwire.Record, until time.Time) (stop func()) {
	ctx, cancel := context.WithDeadline(context.Background(), until)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := h.store.SaveUntil(ctx, queue, id, &rec); err == nil {
			h.log.Info("recorded the remote task id after all", "job_id", id)
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// startPolling sets the attempt to poll a paid remote task (machine.go's next and fire, which run
// pollOnce) until it is ready, gone, expired, or ctx ends. A resumed task is polled at once.
func (h *Handler) startPolling(a *attempt, id anysolver.TaskID, created time.Time, resumed bool) {
	p := &polling{id: id, created: created, typ: a.payload.TaskType()}
	p.delay = h.poller.FirstDelay(p.typ)
	if resumed {
		p.delay = 0
	}
	a.polling = p
}

// pollOnce polls the attempt's remote task once, when its wait is over, and sets the next wait
// or stops the polling with the attempt's ending. Passing trouble (transport failures,
// AnySolver's internal errors, rate limits) does not end the attempt: the task is paid, so it is
// polled again with backoff for as long as AnySolver keeps it.
func (h *Handler) pollOnce(ctx context.Context, a *attempt) {
	p := a.polling
	elapsed := h.now().Sub(p.created)
	if elapsed >= h.remoteTTL {
		a.restorePayload()
		a.rec.Budget = nil // whether AnySolver charged it is unknown: its estimate stands
		ce := classify.Error{Call: classify.CallGetTaskResult, ErrorID: 1, ErrorCode: classify.CodeTaskNotFound,
			ErrorDescription: fmt.Sprintf("the paid task was not ready within the %s AnySolver keeps a task (%d polls)",
				h.remoteTTL.Round(time.Second), p.polls)}
		e := h.verdictFor(ctx, a, ce)
		e.kind = endedRemoteExpired
		a.stopPolling(e)
		return
	}
	p.polls++
	began := h.now()
	res, err := h.anysolver.GetTaskResult(ctx, p.id)
	h.observer.Called(string(classify.CallGetTaskResult), callOutcome(err), h.now().Sub(began))
	a.rec.Polls++
	if err != nil {
		ce, ok := anysolver.AsClassifyError(err)
		if !ok {
			a.stopPolling(stoppedBy(err))
			return
		}
		v := h.policy.Classification().Classify(ce)
		if v.Account || !remoteStillAlive(err, ce, v) {
			a.restorePayload() // settle and the verdict read the job (its type, its secrets)
			if !v.Account {
				a.rec.Remote = nil
				h.settle(ctx, a, 0) // the task ended without a solution, and without a cost
			}
			a.stopPolling(h.classified(ctx, a, classify.CallGetTaskResult, err))
			return
		}
		// Passing trouble: decide says when to poll again, or ends the job at its deadline.
		a.restorePayload()
		e := h.verdictFor(ctx, a, withCall(ce, classify.CallGetTaskResult))
		e.kind, e.trouble = endedPollTrouble, p.troubleDelay
		t := h.decide(a, e)
		if t.PollIn > 0 {
			p.troubleDelay, p.delay = t.PollIn, t.PollIn
			h.log.Debug("poll failed; polling the paid task again", "job_id", a.id, "code", v.Code, "in", p.delay)
			return
		}
		a.decided = &t
		a.stopPolling(e)
		return
	}
	p.troubleDelay = 0
	elapsed = h.now().Sub(p.created)
	if res.Status == anysolver.StatusReady {
		a.restorePayload() // settle reads the job's type
		h.poller.Observe(p.typ, p.lastBusy, elapsed)
		a.rec.Solution, a.rec.Cost = res.Solution, res.Cost
		h.settle(ctx, a, res.Cost)
		a.solveTime = elapsed
		a.stopPolling(ending{kind: endedSolved})
		return
	}
	p.lastBusy = elapsed
	p.delay = h.poller.Interval(p.typ, elapsed)
}

// withCall returns ce as met on call.
func withCall(ce classify.Error, call classify.Call) classify.Error {
	ce.Call = call
	return ce
}

// stoppedBy is the ending of an attempt whose context ended: its own time ran out (asynq's
// Timeout, less a margin), or asynq took the job back (shutdown, a lost lease).
func stoppedBy(err error) ending {
	if errors.Is(err, context.DeadlineExceeded) {
		return ending{kind: endedTimedOut, err: err}
	}
	return ending{kind: endedInterrupted, err: err}
}

// remoteStillAlive reports whether a failed poll leaves the remote task worth polling again:
// transport trouble, AnySolver's internal (errorId 2) errors and rate limits say nothing about
// the task, while status "failed", TASK_NOT_FOUND and other errorId 1 codes end it.
func remoteStillAlive(err error, ce classify.Error, v classify.Verdict) bool {
	if ce.Failure != classify.FailureNone || v.Decision == classify.Throttle {
		return true
	}
	var apiErr *anysolver.APIError
	return ce.ErrorID == 2 && !(errors.As(err, &apiErr) && apiErr.TaskFailed)
}

// classified turns a client error into the attempt's ending.
func (h *Handler) classified(ctx context.Context, a *attempt, call classify.Call, err error) ending {
	ce, ok := anysolver.AsClassifyError(err)
	if !ok {
		return stoppedBy(err)
	}
	ce.Call = call
	return h.verdictFor(ctx, a, ce)
}

// verdictFor classifies an AnySolver error for the attempt. An account error trips the breaker,
// and the ending says whether this job opened it or met it open (decide holds such a job).
func (h *Handler) verdictFor(ctx context.Context, a *attempt, ce classify.Error) ending {
	// Providers echo the proxy, password and all, in their codes and descriptions: this text goes
	// to the record, the dead-letter queue, asynq's error message, the logs and the web UI. The
	// client has cut the API key out already; the job's own secrets go next, and only then is
	// the text cut to size, so that no cut leaves a secret's first bytes behind.
	secrets := append(redact.SecretValues(a.payload.Task), redact.SecretValues(a.payload.Settings)...)
	ce.ErrorCode = redact.Text(ce.ErrorCode, secrets...)
	v := h.policy.Classification().Classify(ce)
	if p := a.rec.Provider; p != "" {
		h.observer.ProviderResult(p, v.Code, 0)
		// The breaker is shared by every queue: only a provider the operator's policy names may
		// open it. One that only jobs name is the producers' word, and a tenant's jobs naming a
		// provider that always fails must not shut it for everyone.
		if classify.ProviderScoped(v.Code) && h.policy.NamesProvider(p) {
			h.providers.Failed(ctx, p, v.Code)
		}
	}
	info := enqueue.ErrorInfo{ErrorID: ce.ErrorID, ErrorCode: redact.AndTruncate(v.Code, maxStoredCodeBytes),
		ErrorDescription: redact.AndTruncate(ce.ErrorDescription, maxStoredDescriptionBytes, secrets...),
		Call:             string(ce.Call), Attempt: a.rec.Attempts}
	if info.ErrorDescription == "" {
		info.ErrorDescription = v.Reason
	}
	e := ending{kind: endedClassified, verdict: v, info: info}
	if v.Account && h.breaker != nil {
		trip, err := h.breaker.Trip(ctx, v.Code, info.ErrorDescription)
		switch {
		case err != nil:
			// The breaker could not be read or opened: the job gets its code's own decision.
		case trip.Opened:
			e.breaker = breakerOpened
			if trip.Announce {
				a.breakerNews = &breaker.News{Code: v.Code, Reason: info.ErrorDescription, Paused: trip.Paused}
			}
		default:
			e.breaker = breakerWasOpen
		}
	}
	return e
}

// The bounds of an error's code and description as a record keeps them.
const (
	maxStoredCodeBytes        = 128
	maxStoredDescriptionBytes = 512
)

func callOutcome(err error) string {
	if err == nil {
		return "ok"
	}
	if ce, ok := anysolver.AsClassifyError(err); ok {
		if ce.ErrorCode != "" {
			return ce.ErrorCode
		}
		return string(ce.Failure)
	}
	return "canceled"
}
