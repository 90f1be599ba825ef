package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/breaker"
)

// op is a change the console makes.
type op string

// The changes.
const (
	opRedrive       op = "redrive"        // dead letters: a fresh task with a fresh retry budget
	opPurge         op = "purge"          // dead letters: deleted for good
	opRedriveFailed op = "redrive-failed" // failed jobs: run again, by the operator's choice
	opResetBreaker  op = "reset-breaker"  // the account breaker: closed, its queues resumed
)

// MaxSelection bounds how many jobs one change takes.
const MaxSelection = 500

// actTimeout bounds one change, every job of it.
const actTimeout = time.Minute

// maxFormBytes bounds a change's form.
const maxFormBytes = 1 << 20

// Label is the op's button text.
func (o op) Label() string {
	switch o {
	case opRedrive:
		return "Redrive"
	case opPurge:
		return "Purge"
	case opRedriveFailed:
		return "Run again"
	case opResetBreaker:
		return "Reset the breaker"
	}
	return string(o)
}

// Warning says what the op does, for its confirmation.
func (o op) Warning() string {
	switch o {
	case opRedrive:
		return "Each job runs again with a fresh retry budget and keeps its ID. Each one is paid for again: fix the cause first."
	case opPurge:
		return "Each job is deleted for good: its dead-letter entry and its archived task. This cannot be undone."
	case opRedriveFailed:
		return "A failed job can never succeed as submitted, unless its cause was outside it (a zero balance since topped up, a ban since lifted). Each job runs again with a fresh retry budget and is paid for again."
	case opResetBreaker:
		return "The breaker closes and resumes the queues it paused (never one an operator paused), without asking AnySolver first. If the account still fails, the next job that meets the error opens it again."
	}
	return ""
}

func (o op) valid() bool {
	switch o {
	case opRedrive, opPurge, opRedriveFailed, opResetBreaker:
		return true
	}
	return false
}

// jobRef names a job: its queue and ID.
type jobRef struct{ Queue, ID string }

// confirmData is the confirmation page of a change.
type confirmData struct {
	Op   op
	Jobs []jobRef
	Back string
}

// doneData is the page after a change: one result per job.
type doneData struct {
	Op      op
	Results []result
	Back    string
	OK      int
}

type result struct {
	Queue, ID string
	OK        bool
	Msg       string
}

// act makes a change: first it asks for a confirmation, then it makes it and logs it.
func (c *console) act(w http.ResponseWriter, r *http.Request) {
	if c.cfg.ReadOnly {
		c.fail(w, r, http.StatusForbidden, "This console is read-only: it changes nothing. Use the solvequeue CLI.")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, http.StatusBadRequest, "the form could not be read: "+err.Error())
		return
	}
	if !csrfValid(r) {
		c.cfg.Logger.Warn("console: change refused: no valid form token", "by", who(r), "op", r.PostFormValue("op"))
		c.fail(w, r, http.StatusForbidden, "The form's token does not match this browser's: reload the page and try again. "+
			"(A form posted from another site is refused.)")
		return
	}
	o := op(r.PostFormValue("op"))
	if !o.valid() {
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("no such change: %q", string(o)))
		return
	}
	back := r.PostFormValue("back")
	if !strings.HasPrefix(back, Path+"/") || strings.HasPrefix(back, Path+"//") {
		back = Path + "/"
	}
	var jobs []jobRef
	for _, v := range r.PostForm["job"] {
		q, id, ok := strings.Cut(v, "/")
		if ok && q != "" && id != "" {
			jobs = append(jobs, jobRef{Queue: q, ID: id})
		}
	}
	switch {
	case o != opResetBreaker && len(jobs) == 0:
		c.fail(w, r, http.StatusBadRequest, "Select at least one job.")
		return
	case len(jobs) > MaxSelection:
		c.fail(w, r, http.StatusBadRequest, fmt.Sprintf("At most %d jobs at a time; %d were selected.", MaxSelection, len(jobs)))
		return
	}
	if r.PostFormValue("confirm") != "yes" {
		c.render(w, r, http.StatusOK, "confirm", page{Title: "Confirm: " + o.Label(), Data: confirmData{Op: o, Jobs: jobs, Back: back}})
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), actTimeout)
	defer cancel()
	done := doneData{Op: o, Back: back}
	by := who(r)
	if o == opResetBreaker {
		res := result{OK: true}
		resumed, err := breaker.Reset(ctx, c.rc)
		if err != nil {
			res = result{Msg: redactError(err)}
		} else {
			res.Msg = "breaker closed; queues resumed: " + orDash(strings.Join(resumed, ", "))
		}
		c.logChange(ctx, o, by, jobRef{}, res)
		done.Results = append(done.Results, res)
	}
	for _, j := range jobs {
		res := c.change(ctx, o, j)
		c.logChange(ctx, o, by, j, res)
		done.Results = append(done.Results, res)
	}
	for _, res := range done.Results {
		if res.OK {
			done.OK++
		}
	}
	c.render(w, r, http.StatusOK, "done", page{Title: o.Label() + ": done", Data: done})
}

// change applies o to one job.
func (c *console) change(ctx context.Context, o op, j jobRef) result {
	res := result{Queue: j.Queue, ID: j.ID}
	var err error
	switch o {
	case opRedrive, opPurge:
		var d admin.DeadLetter
		d, err = c.client.DeadLetter(ctx, j.Queue, j.ID)
		if err != nil {
			break
		}
		if o == opRedrive {
			err = c.client.Redrive(ctx, d)
			res.Msg = "runs again"
			break
		}
		var n int
		n, err = c.client.Purge(ctx, []admin.DeadLetter{d})
		if err == nil && n == 0 {
			err = fmt.Errorf("%w: it left the dead-letter queue meanwhile (redriven or purged elsewhere)", enqueue.ErrJobNotFound)
		}
		res.Msg = "deleted"
	case opRedriveFailed:
		_, err = c.client.RedriveFailed(ctx, j.Queue, j.ID)
		res.Msg = "runs again"
	}
	if err != nil {
		res.Msg = redactError(err)
		if errors.Is(err, enqueue.ErrJobNotFound) || errors.Is(err, admin.ErrNotFailed) {
			res.Msg += " (nothing changed)"
		}
		return res
	}
	res.OK = true
	return res
}

// logChange writes the change log's line: what, to which job, by whom, and how it went.
func (c *console) logChange(ctx context.Context, o op, by string, j jobRef, res result) {
	args := []any{"op", string(o), "by", by, "ok", res.OK, "result", res.Msg}
	if j.ID != "" {
		args = append(args, "queue", j.Queue, "job_id", j.ID)
	}
	c.cfg.Logger.InfoContext(ctx, "console: change", args...)
}
