package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// jobData is what the job page shows of one job.
type jobData struct {
	ID, Queue  string
	State      enqueue.State
	AsynqState string
	Record     jobwire.Record
	Errors     []enqueue.ErrorInfo // newest last, descriptions redacted
	Dropped    int
	Payload    string // redacted, indented JSON
	TaskType   string
	Providers  []string // what the job named
	RecordJSON string   // the record as stored, redacted
	Timeline   []event
	MaxRetry   int  // asynq's backstop (jobwire.AsynqMaxRetryDefault): not the budget
	OwnBudget  *int // the job's own retry budget (its maxRetries), when it gave one
	Budget     int  // the retries the worker allows this job, as its decide counts them
	NextRunAt  time.Time
	LastErr    string
	DeadLetter bool // the durable dead-letter queue holds it
	Remote     string
	// KeyName and GatewayTaskID say which gateway key submitted the job, and the taskId its
	// client knows it by (empty and 0 when it did not come through the gateway).
	KeyName       string
	GatewayTaskID int64
}

// event is one line of a job's timeline.
type event struct {
	At   time.Time
	What string
	Kind string // a CSS class: ok, err, info
}

// match is one queue holding a job with the ID searched.
type match struct {
	Queue string
	State enqueue.State
}

// jobPage is the job page's data: the job, or the queues to choose from, or nothing found.
type jobPage struct {
	ID      string
	TaskID  int64 // the gateway taskId searched for, when the search was one
	Job     *jobData
	Matches []match
}

// job shows the job with the ID given (id), or the gateway job a client knows by the taskId given
// (taskId); an ID that is a number and names no job is tried as a taskId.
func (c *console) job(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimSpace(r.URL.Query().Get("id"))
	queue := r.URL.Query().Get("queue")
	task := strings.TrimSpace(r.URL.Query().Get("taskId"))
	p := page{Title: "Job " + id, Nav: "job", Search: id}
	if id == "" && task == "" {
		p.Title = "Find a job"
		c.render(w, r, http.StatusOK, "job", p)
		return
	}
	ctx, cancel := c.readCtx(r)
	defer cancel()
	jp := jobPage{ID: id}
	var jobs []*jobData
	var err error
	if id != "" {
		jobs, err = c.find(ctx, queue, id)
	}
	if err == nil && len(jobs) == 0 {
		if task == "" {
			task = id
		}
		if n, perr := strconv.ParseInt(task, 10, 64); perr == nil && n > 0 {
			jp.TaskID = n
			jobs, err = c.findTaskID(ctx, n)
		}
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "could not read job "+id+task+": "+redactError(err))
		return
	}
	if jp.ID == "" {
		jp.ID, p.Search = task, task
	}
	if jp.TaskID != 0 && len(jobs) > 0 {
		jp.ID = jobs[0].ID
	}
	p.Title = "Job " + jp.ID
	switch len(jobs) {
	case 0:
		p.Data = jp
		c.render(w, r, http.StatusNotFound, "job", p)
		return
	case 1:
		jp.Job = jobs[0]
	default:
		for _, j := range jobs {
			jp.Matches = append(jp.Matches, match{Queue: j.Queue, State: j.State})
		}
	}
	p.Data = jp
	c.render(w, r, http.StatusOK, "job", p)
}

// findTaskID reads the gateway job a client knows by taskID: the job its ID names under one of
// the gateway's key names (gateway.TaskJobs), whose payload carries that taskId.
func (c *console) findTaskID(ctx context.Context, taskID int64) ([]*jobData, error) {
	candidates, err := gateway.TaskJobs(ctx, c.rc, taskID)
	if err != nil {
		return nil, err
	}
	var out []*jobData
	for _, cand := range candidates {
		jobs, err := c.find(ctx, "", cand.JobID)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			if j.GatewayTaskID == taskID && j.KeyName == cand.KeyName {
				out = append(out, j)
			}
		}
	}
	return out, nil
}

// find reads the job with this ID from queue, or from every queue and the dead-letter queue.
func (c *console) find(ctx context.Context, queue, id string) ([]*jobData, error) {
	queues := []string{queue}
	if queue == "" {
		qs, err := c.inspector.Queues()
		if err != nil {
			return nil, err
		}
		// Only job queues: the worker's queue of callback deliveries has a name no job's
		// queue may have.
		queues = slices.DeleteFunc(qs, func(q string) bool { return !queuereg.ValidName(q) })
	}
	byQueue := map[string]*jobData{}
	var out []*jobData
	for _, q := range queues {
		info, err := c.inspector.GetTaskInfo(q, id)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		j := jobFromTask(info)
		j.Budget = c.cfg.Policy.Classification().RetryBudget(j.OwnBudget, j.MaxRetry)
		byQueue[q] = j
		out = append(out, j)
	}
	// The dead letters with this ID: each queue keeps its own (under its hash tag).
	dlQueues := []string{queue}
	if queue == "" {
		var err error
		if dlQueues, err = c.queueNames(ctx); err != nil {
			return nil, err
		}
	}
	for _, q := range dlQueues {
		l, err := c.client.DeadLetter(ctx, q, id)
		if errors.Is(err, enqueue.ErrJobNotFound) {
			continue // redriven or purged meanwhile
		}
		if err != nil {
			return nil, err
		}
		if j := byQueue[l.Queue]; j != nil {
			j.DeadLetter = true
			j.Timeline = append(j.Timeline, event{At: l.DeadAt, What: "put into the dead-letter queue", Kind: "err"})
			sortTimeline(j.Timeline)
			continue
		}
		// asynq's archive trimmed the task: the durable entry has it all.
		j := jobFromDeadLetter(l)
		j.Budget = c.cfg.Policy.Classification().RetryBudget(j.OwnBudget, 0)
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Queue < out[b].Queue })
	return out, nil
}

// jobFromTask reads a job from its asynq task and the record in its result.
func jobFromTask(info *asynq.TaskInfo) *jobData {
	rec, err := jobwire.DecodeRecord(info.Result)
	j := &jobData{ID: info.ID, Queue: info.Queue, AsynqState: info.State.String(), Record: rec,
		MaxRetry: info.MaxRetry, NextRunAt: info.NextProcessAt, TaskType: info.Type}
	j.State = stateOf(info, rec)
	if err != nil {
		j.RecordJSON = "(the record cannot be read: " + err.Error() + ")"
	} else if len(info.Result) > 0 {
		j.RecordJSON = indent(redact.JSON(info.Result))
	}
	secrets := j.readPayload(info.Payload)
	j.LastErr = redact.Text(info.LastErr, secrets...)
	if !j.State.Terminal() {
		if t := info.NextProcessAt; !t.IsZero() && (info.State == asynq.TaskStateScheduled || info.State == asynq.TaskStateRetry) {
			j.Timeline = append(j.Timeline, event{At: t, What: "next attempt due", Kind: "info"})
		}
	} else {
		j.NextRunAt = time.Time{}
	}
	j.fill(secrets)
	return j
}

// jobFromDeadLetter reads a dead job from its dead-letter entry alone.
func jobFromDeadLetter(d admin.DeadLetter) *jobData {
	j := &jobData{ID: d.ID, Queue: d.Queue, State: enqueue.StateDead, AsynqState: "(trimmed from asynq's archive)",
		Record: d.Record, DeadLetter: true, TaskType: jobwire.TaskType}
	if raw, err := json.Marshal(d.Record); err == nil {
		j.RecordJSON = indent(redact.JSON(raw))
	}
	if d.UnreadableRecord != "" {
		j.RecordJSON = "(the record as the worker found it could not be read; it is kept in the dead-letter entry)"
	}
	secrets := j.readPayload(d.Payload)
	j.Timeline = append(j.Timeline, event{At: d.DeadAt, What: "put into the dead-letter queue", Kind: "err"})
	j.fill(secrets)
	return j
}

// readPayload shows the payload redacted and returns the secrets in it, to cut from error texts.
func (j *jobData) readPayload(raw []byte) []string {
	var p jobwire.Payload
	var v any
	if json.Unmarshal(raw, &v) != nil || json.Unmarshal(raw, &p) != nil {
		j.Payload = "(not a solve job's payload: hidden)"
		return nil
	}
	j.Payload = indent(redact.JSON(raw))
	j.TaskType = p.TaskType()
	j.KeyName, j.GatewayTaskID = p.KeyName, p.GatewayTaskID
	j.OwnBudget = p.MaxRetries
	j.Providers = p.Providers
	if len(j.Providers) == 0 && p.Provider != "" {
		j.Providers = []string{p.Provider}
	}
	if !p.SubmittedAt.IsZero() {
		j.Timeline = append(j.Timeline, event{At: p.SubmittedAt, What: "submitted", Kind: "info"})
	}
	if !p.Deadline.IsZero() {
		j.Timeline = append(j.Timeline, event{At: p.Deadline, What: "deadline: no new AnySolver task after this", Kind: "info"})
	}
	return redact.SecretValues(v)
}

// fill derives the error list and the timeline from the record.
func (j *jobData) fill(secrets []string) {
	rec := j.Record
	errs := rec.Errors
	if len(errs) == 0 && rec.Error != nil {
		errs = []enqueue.ErrorInfo{*rec.Error} // a record written before the history was kept
	}
	for _, e := range errs {
		e.ErrorDescription = redact.Text(e.ErrorDescription, secrets...)
		e.ErrorCode = redact.Text(e.ErrorCode, secrets...)
		j.Errors = append(j.Errors, e)
		if !e.At.IsZero() {
			j.Timeline = append(j.Timeline, event{At: e.At, Kind: "err",
				What: "attempt " + itoa(e.Attempt) + ": " + e.ErrorCode + " on " + orDash(e.Call) + " → " + orDash(e.Decision)})
		}
	}
	j.Dropped = rec.ErrorsDropped
	if !rec.StartedAt.IsZero() {
		j.Timeline = append(j.Timeline, event{At: rec.StartedAt, What: "first attempt started", Kind: "info"})
	}
	if r := rec.Remote; r != nil {
		j.Remote = string(r.TaskID)
		if !r.CreatedAt.IsZero() {
			j.Timeline = append(j.Timeline, event{At: r.CreatedAt, What: "AnySolver task " + j.Remote + " created (paid); polling it", Kind: "info"})
		}
	}
	if !rec.FinishedAt.IsZero() {
		kind := "ok"
		if rec.State != enqueue.StateSolved {
			kind = "err"
		}
		j.Timeline = append(j.Timeline, event{At: rec.FinishedAt, What: "ended " + string(rec.State), Kind: kind})
	}
	sortTimeline(j.Timeline)
}

func sortTimeline(ev []event) {
	sort.SliceStable(ev, func(a, b int) bool { return ev[a].At.Before(ev[b].At) })
}

// stateOf is a job's state as solvequeue names it, from asynq's state and the record.
func stateOf(info *asynq.TaskInfo, rec jobwire.Record) enqueue.State {
	switch info.State {
	case asynq.TaskStateActive:
		return enqueue.StateActive
	case asynq.TaskStateScheduled:
		return enqueue.StateScheduled
	case asynq.TaskStateRetry:
		return enqueue.StateRetrying
	case asynq.TaskStateArchived:
		return enqueue.StateDead
	case asynq.TaskStateCompleted:
		if rec.State.Terminal() {
			return rec.State
		}
		return enqueue.StateSolved
	default:
		return enqueue.StatePending
	}
}

func indent(data []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, data, "", "  "); err != nil {
		return string(data)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
