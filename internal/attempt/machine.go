package attempt

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/record"
)

// How an attempt moves from step to step without holding asynq's goroutine in deep calls.
//
// Thousands of attempts are in flight at once, each on the goroutine asynq gave it, and a
// goroutine keeps the largest stack it ever needed: the garbage collector halves a stack only
// when a quarter of it holds all that is in use, and an asynq handler waiting in a select rests
// at about 850 of its first 2,048 bytes, so a stack that grew to 4 KB once stays 4 KB. Blocking
// on a channel from a few frames deeper, or allocating there (a blocked goroutine's sudog is
// itself allocated when the runtime's cache is empty, as it is after every collection), is
// enough to grow it: with the old loop, which waited between polls in ProcessTask and handed
// each step to another goroutine and waited for it, two thirds of the waiting attempts held
// 4 KB stacks.
//
// So asynq's goroutine does nothing but start the attempt and wait, once, on one channel, at the
// top of the handler. The attempt itself runs on short-lived goroutines: its first step on one
// of its own (drive), each poll on the goroutine its timer starts (fire), its end where its last
// step ran (conclude); a step beyond the bound on steps running at once is queued and run by the
// goroutine of a step that ends (steps.go). Only the steps running at this moment hold deep
// stacks (HTTP, JSON, Redis); a waiting attempt holds a timer and a place on the list of waits
// whose contexts are watched (waits.go), no goroutine of its own.

// attemptEnd is how an attempt ended, sent once to the goroutine asynq gave it.
type attemptEnd struct {
	err      error
	panicked any // a panic while the outcome was written, raised again on asynq's goroutine
}

// ProcessTask runs one attempt of a solve job: resume the paid remote task if there is one,
// else create one, poll it, and record the outcome. It is idempotent: a job redelivered after
// its outcome was recorded ends as recorded without calling AnySolver. A callback delivery
// (package callback) is run as such.
func (h *Handler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	if t.Type() == callback.TaskType {
		return processCallback(ctx, h.callbacks, t)
	}
	return h.process(ctx, taskMetaOf(ctx), t)
}

// taskMeta is what asynq tells a handler about the task it runs, besides the task itself.
type taskMeta struct {
	id, queue string
	retried   int // retries asynq has counted so far
	maxRetry  int // the retry count asynq was given for the task
}

// taskMetaOf reads asynq's metadata from a handler's context.
func taskMetaOf(ctx context.Context) taskMeta {
	var m taskMeta
	m.id, _ = asynq.GetTaskID(ctx)
	m.queue, _ = asynq.GetQueueName(ctx)
	m.retried, _ = asynq.GetRetryCount(ctx)
	m.maxRetry, _ = asynq.GetMaxRetry(ctx)
	return m
}

// process runs one attempt of the solve job t, which asynq describes with m. Tests call it with
// metadata of their own, as asynq's would be.
func (h *Handler) process(ctx context.Context, m taskMeta, t *asynq.Task) error {
	h.running.add()
	end := make(chan attemptEnd, 1)
	go h.drive(&attempt{ctx: ctx, until: ownDeadline(ctx), end: end}, m, t)
	e := <-end
	if e.panicked != nil {
		panic(e.panicked)
	}
	return e.err
}

// attemptMargin is how long before asynq's own timeout of a task the attempt's time runs out, at
// most: time to write its outcome (a save's bound) and return it, so that asynq never ends an
// attempt by itself (it would, with no word from decide). A short timeout keeps a quarter.
const attemptMargin = record.SaveTimeout + 5*time.Second

// ownDeadline is the attempt's own deadline, a margin before asynq's (zero when asynq's ctx has
// none): when it passes, the attempt ends as timed out (decide's endedTimedOut) and says so to
// asynq in time.
func ownDeadline(ctx context.Context) time.Time {
	dl, ok := ctx.Deadline()
	if !ok {
		return time.Time{}
	}
	margin := min(attemptMargin, time.Until(dl)/4)
	return dl.Add(-margin)
}

// err is why the attempt must stop: asynq's ctx ended, or the attempt's own deadline passed
// (context.DeadlineExceeded, as a context with that deadline would say); nil while it may go on.
func (a *attempt) err() error {
	if err := a.ctx.Err(); err != nil {
		return err
	}
	if !a.until.IsZero() && !time.Now().Before(a.until) {
		return context.DeadlineExceeded
	}
	return nil
}

// stepContext returns the context a step of the attempt runs under: asynq's, with the attempt's
// own deadline. It lives only as long as the step: a waiting attempt holds asynq's ctx and its
// deadline as a time, not a context of its own with a timer and a place among asynq's ctx's
// children, since thousands wait at once.
func (a *attempt) stepContext() (context.Context, context.CancelFunc) {
	if a.until.IsZero() {
		return a.ctx, func() {}
	}
	return context.WithDeadline(a.ctx, a.until)
}

// drive runs the attempt's first step on a goroutine of its own (queued while every step's slot
// is taken), then moves it on.
func (h *Handler) drive(a *attempt, m taskMeta, t *asynq.Task) {
	h.steps.run(func() {
		ctx, cancel := a.stepContext()
		defer cancel()
		defer h.recoverStep(ctx, a)
		h.begin(ctx, a, m, t)
		h.next(ctx, a)
	})
}

// next moves the attempt on after a step: it arms the wait for the next poll, or polls at once
// when there is no wait, or ends the attempt once its polling stopped.
func (h *Handler) next(ctx context.Context, a *attempt) {
	for a.polling != nil {
		if d := a.polling.delay; d > 0 {
			if d >= dropPayloadAfter {
				a.dropPayload()
			}
			if h.waits.arm(a, d) {
				return
			}
			a.interrupted(a.err())
			break
		}
		if err := ctx.Err(); err != nil {
			a.interrupted(err)
			break
		}
		h.pollOnce(ctx, a)
	}
	h.conclude(ctx, a)
}

// fire runs on the goroutine the attempt's timer starts: the next poll (queued while every
// step's slot is taken), unless ctx ending claimed the wait first.
func (h *Handler) fire(a *attempt) {
	if !h.waits.claim(a) {
		return
	}
	h.steps.run(func() { h.poll(a) })
}

// poll is the step fire runs: the next poll, and on.
func (h *Handler) poll(a *attempt) {
	ctx, cancel := a.stepContext()
	defer cancel()
	defer h.recoverStep(ctx, a)
	h.pollOnce(ctx, a)
	h.next(ctx, a)
}

// cancelWait runs when the attempt's ctx ended while it waited for its next poll (waits.go): the
// attempt ends as interrupted at once, as a waiting handler would have returned. A step running
// at that moment sees ctx ended itself, and next stops after it.
func (h *Handler) cancelWait(a *attempt) {
	ctx, cancel := a.stepContext()
	defer cancel()
	defer h.recoverStep(ctx, a)
	a.interrupted(a.err())
	h.next(ctx, a)
}

// dropPayloadAfter is the shortest wait for a poll during which an attempt lets its decoded job
// go (dropPayload): a job's task is a map of strings, about half a kilobyte, and the thousands of
// attempts waiting at once need it only when they end. Shorter waits keep it, rather than decode
// it again.
const dropPayloadAfter = time.Second

// dropPayload lets the decoded job go while the remote task is polled; restorePayload decodes it
// again, from the raw payload asynq holds anyway, before anything reads it.
func (a *attempt) dropPayload() {
	if a.payload.Task != nil || a.payload.Settings != nil {
		a.payload, a.payloadDropped = jobwire.Payload{}, true
	}
}

// restorePayload undoes dropPayload. The payload decoded when the attempt began, so it does again.
func (a *attempt) restorePayload() {
	if a.payloadDropped {
		a.payload, _ = jobwire.DecodePayload(a.raw)
		a.payloadDropped = false
	}
}

// giveBackSlot gives back the attempt's slot in the fair share, if it took one.
func (a *attempt) giveBackSlot() {
	if a.releaseSlot != nil {
		a.releaseSlot()
		a.releaseSlot = nil
	}
}

// interrupted stops the attempt's polling as interrupted by err.
func (a *attempt) interrupted(err error) { a.stopPolling(stoppedBy(err)) }

// conclude ends the attempt as a.result says and hands how it ended to asynq's goroutine.
func (h *Handler) conclude(ctx context.Context, a *attempt) {
	a.concluding = true
	a.restorePayload()
	err := h.finish(ctx, a)
	a.giveBackSlot()
	h.running.done()
	a.end <- attemptEnd{err: err}
}

// recoverStep, deferred by every goroutine that runs a step, turns a step's panic into the
// attempt's ending (endedPanicked: decide spends a retry on it, and ends the job dead once the
// budget is spent), logged with its stack. A panic while the outcome is written is handed to
// asynq's goroutine instead, which raises it again for asynq to recover, as it would a panic in
// any handler.
func (h *Handler) recoverStep(ctx context.Context, a *attempt) {
	p := recover()
	if p == nil {
		return
	}
	if a.concluding {
		a.giveBackSlot()
		h.running.done()
		a.end <- attemptEnd{panicked: p}
		return
	}
	h.log.Error("a step of the attempt panicked; the job spends a retry", "job_id", a.id, "queue", a.queue,
		"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	a.decided = nil
	a.stopPolling(ending{kind: endedPanicked, err: fmt.Errorf("panic: %v", p)})
	defer h.recoverStep(ctx, a) // conclude is now under way: a second panic goes to asynq
	h.conclude(ctx, a)
}
