package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// ScanMax bounds how many in-flight tasks a list filtered by code (or spanning every queue)
// reads; the page says when it read no further.
const ScanMax = 5000

// The lists, by the state they show. inFlight is every job not ended yet: the four states after it.
var listStates = []string{"dead", "failed", inFlight, "active", "retrying", "scheduled", "pending"}

// inFlight is the list of the jobs still running or waiting to run: active, retrying, scheduled
// and pending together.
const inFlight = "inflight"

// stateLabel is how a list's state reads on the page.
func stateLabel(state string) string {
	if state == inFlight {
		return "in flight"
	}
	return state
}

// listData is one page of a list of jobs.
type listData struct {
	State, Queue, Code string
	States, Queues     []string
	Codes              []string // codes present, for the filter
	Rows               []listRow
	Total, Page, Pages int
	Prev, Next         string // links; "" at either end
	Note               string
	Ops                []op // the changes a selection may get
}

// listRow is one job of a list.
type listRow struct {
	Key                   string // queue/id: a selection's value
	ID, Queue             string
	State                 enqueue.State
	Code, Desc            string
	Attempts, CreateTasks int
	Cost                  float64
	At                    time.Time // dead, failed: when; in flight: the next run, if any
}

func (c *console) jobs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if taskID := strings.TrimSpace(q.Get("taskId")); taskID != "" {
		// A gateway job by the taskId its client knows: one job, shown on the job page.
		http.Redirect(w, r, Path+"/job?"+url.Values{"taskId": {taskID}}.Encode(), http.StatusSeeOther)
		return
	}
	d := listData{State: q.Get("state"), Queue: q.Get("queue"), Code: strings.TrimSpace(q.Get("code")), States: listStates}
	if !slices.Contains(listStates, d.State) {
		d.State = "dead"
	}
	var err error
	if d.Page, err = parsePage(q.Get("page")); err != nil {
		c.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := c.readCtx(r)
	defer cancel()
	if d.Queues, err = c.queueNames(ctx); err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "could not list the queues: "+redactError(err))
		return
	}
	if d.Queue != "" && !slices.Contains(d.Queues, d.Queue) {
		d.Queues = append(d.Queues, d.Queue)
	}
	switch d.State {
	case "dead":
		err = c.listDead(ctx, &d)
	case "failed":
		err = c.listFailed(ctx, &d)
	default:
		err = c.listInFlight(ctx, &d)
	}
	if err != nil {
		c.fail(w, r, http.StatusServiceUnavailable, "could not read the "+d.State+" jobs: "+redactError(err))
		return
	}
	d.Pages = max((d.Total+PageSize-1)/PageSize, 1)
	link := func(p int) string {
		v := url.Values{"state": {d.State}, "page": {strconv.Itoa(p)}}
		if d.Queue != "" {
			v.Set("queue", d.Queue)
		}
		if d.Code != "" {
			v.Set("code", d.Code)
		}
		return Path + "/jobs?" + v.Encode()
	}
	if d.Page > 1 {
		d.Prev = link(d.Page - 1)
	}
	if d.Page < d.Pages {
		d.Next = link(d.Page + 1)
	}
	label := stateLabel(d.State)
	c.render(w, r, http.StatusOK, "list", page{Title: strings.ToUpper(label[:1]) + label[1:] + " jobs", Nav: d.State, Data: d})
}

// parsePage reads a list's page parameter: none is the first page, a number past the last
// (however large) is clamped to the last page once the list's length is known, and anything else
// that is not a whole number from 1 is an error that says what would do.
func parsePage(s string) (int, error) {
	if s == "" {
		return 1, nil
	}
	n, err := strconv.Atoi(s)
	if ne := (*strconv.NumError)(nil); errors.As(err, &ne) && errors.Is(ne.Err, strconv.ErrRange) && n > 0 {
		return math.MaxInt, nil // past any last page: clamped to it
	}
	if err != nil || n < 1 {
		return 0, fmt.Errorf("page must be a whole number from 1 up, got %q", s)
	}
	return n, nil
}

// clampPage keeps d.Page within a list of n rows: past the last page it shows the last.
func (d *listData) clampPage(n int) {
	d.Page = min(d.Page, max((n+PageSize-1)/PageSize, 1))
}

// window returns the bounds of the page's rows in a list of n.
func (d *listData) window(n int) (int, int) {
	d.Total = n
	d.clampPage(n)
	from := min((d.Page-1)*PageSize, n)
	return from, min(from+PageSize, n)
}

// listDead lists the durable dead-letter queue, newest first.
func (c *console) listDead(ctx context.Context, d *listData) error {
	letters, err := c.client.DeadLetters(ctx)
	if err != nil {
		return err
	}
	codes := map[string]bool{}
	var rows []listRow
	for i := len(letters) - 1; i >= 0; i-- {
		l := letters[i]
		if d.Queue != "" && l.Queue != d.Queue {
			continue
		}
		row := listRow{Key: keys.DeadLetterField(l.Queue, l.ID), ID: l.ID, Queue: l.Queue, State: enqueue.StateDead,
			Attempts: l.Record.Attempts, CreateTasks: l.Record.CreateTasks, Cost: l.Record.Cost, At: l.DeadAt}
		secrets := payloadSecrets(l.Payload)
		if e := l.Record.Error; e != nil {
			row.Code, row.Desc = redact.Text(e.ErrorCode, secrets...), redact.Text(e.ErrorDescription, secrets...)
		}
		codes[row.Code] = true
		if d.Code != "" && row.Code != d.Code {
			continue
		}
		rows = append(rows, row)
	}
	from, to := d.window(len(rows))
	d.Rows = rows[from:to]
	d.Codes = sortedCodes(codes)
	d.Ops = []op{opRedrive, opPurge}
	return nil
}

// listFailed lists the failed index of one queue or every queue, newest first, reading the
// page's jobs from asynq; an entry whose job is gone (its retention ended) is dropped.
func (c *console) listFailed(ctx context.Context, d *listData) error {
	queues := d.Queues
	if d.Queue != "" {
		queues = []string{d.Queue}
	}
	type entry struct {
		admin.FailedEntry
		queue string
	}
	var all []entry
	codes := map[string]bool{}
	for _, q := range queues {
		es, err := c.client.FailedJobs(ctx, q)
		if err != nil {
			return err
		}
		for _, e := range es {
			codes[e.Code] = true
			if d.Code == "" || e.Code == d.Code {
				all = append(all, entry{e, q})
			}
		}
	}
	sort.SliceStable(all, func(a, b int) bool { return all[a].FailedAt.After(all[b].FailedAt) })
	from, to := d.window(len(all))
	gone := map[string][]admin.FailedEntry{}
	for _, e := range all[from:to] {
		info, err := c.inspector.GetTaskInfo(e.queue, e.ID)
		if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
			gone[e.queue] = append(gone[e.queue], e.FailedEntry)
			continue
		}
		if err != nil {
			return err
		}
		row := rowOf(info)
		if row.State != enqueue.StateFailed {
			// Redriven, and running or ended otherwise since: no longer failed.
			gone[e.queue] = append(gone[e.queue], e.FailedEntry)
			continue
		}
		row.At = e.FailedAt
		d.Rows = append(d.Rows, row)
	}
	n := 0
	for q, es := range gone {
		n += len(es)
		_ = c.client.ForgetFailed(ctx, q, es) // read again next time if this fails
	}
	if n > 0 {
		d.Note = strconv.Itoa(n) + " listed job(s) had left (their retention ended, or they were redriven) and were dropped from the list"
	}
	d.Codes = sortedCodes(codes)
	d.Ops = []op{opRedriveFailed}
	return nil
}

// lister reads one page of a queue's tasks in one asynq state.
type lister func(string, ...asynq.ListOption) ([]*asynq.TaskInfo, error)

// listInFlight lists one queue's tasks in an in-flight state through asynq's own pages, or,
// filtered by code, across every queue or for every in-flight state at once, reads up to
// ScanMax of them and pages those.
func (c *console) listInFlight(ctx context.Context, d *listData) error {
	listers := map[string]lister{
		"retrying": c.inspector.ListRetryTasks, "scheduled": c.inspector.ListScheduledTasks,
		"pending": c.inspector.ListPendingTasks, "active": c.inspector.ListActiveTasks,
	}
	lists := []lister{listers[d.State]}
	if d.State == inFlight {
		lists = []lister{listers["active"], listers["retrying"], listers["scheduled"], listers["pending"]}
	}
	if d.Queue != "" && d.Code == "" && d.State != inFlight {
		list := lists[0]
		info, err := c.inspector.GetQueueInfo(d.Queue)
		if errors.Is(err, asynq.ErrQueueNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		d.Total = map[string]int{"retrying": info.Retry, "scheduled": info.Scheduled, "pending": info.Pending, "active": info.Active}[d.State]
		d.clampPage(d.Total)
		tasks, err := list(d.Queue, asynq.PageSize(PageSize), asynq.Page(d.Page))
		if err != nil {
			return err
		}
		codes := map[string]bool{}
		for _, t := range tasks {
			row := rowOf(t)
			codes[row.Code] = true
			d.Rows = append(d.Rows, row)
		}
		d.Codes = sortedCodes(codes)
		return nil
	}
	queues := d.Queues
	if d.Queue != "" {
		queues = []string{d.Queue}
	}
	var rows []listRow
	codes := map[string]bool{}
	read := 0
scan:
	for _, q := range queues {
		for _, list := range lists {
			for p := 1; ; p++ {
				tasks, err := list(q, asynq.PageSize(500), asynq.Page(p))
				if errors.Is(err, asynq.ErrQueueNotFound) {
					break
				}
				if err != nil {
					return err
				}
				for _, t := range tasks {
					row := rowOf(t)
					codes[row.Code] = true
					if d.Code == "" || row.Code == d.Code {
						rows = append(rows, row)
					}
				}
				read += len(tasks)
				if read >= ScanMax {
					d.Note = "read the first " + strconv.Itoa(read) + " " + stateLabel(d.State) + " jobs only: pick one queue" +
						map[bool]string{true: " and one state", false: ""}[d.State == inFlight] + " to page through all of them"
					break scan
				}
				if len(tasks) < 500 {
					break
				}
			}
		}
	}
	from, to := d.window(len(rows))
	d.Rows = rows[from:to]
	d.Codes = sortedCodes(codes)
	return nil
}

// rowOf is a list row read from an asynq task and its record.
func rowOf(t *asynq.TaskInfo) listRow {
	rec, _ := jobwire.DecodeRecord(t.Result)
	row := listRow{Key: keys.DeadLetterField(t.Queue, t.ID), ID: t.ID, Queue: t.Queue, State: stateOf(t, rec),
		Attempts: rec.Attempts, CreateTasks: rec.CreateTasks, Cost: rec.Cost}
	if !row.State.Terminal() {
		row.At = t.NextProcessAt
	} else {
		row.At = rec.FinishedAt
	}
	if e := rec.Error; e != nil {
		secrets := payloadSecrets(t.Payload)
		row.Code, row.Desc = redact.Text(e.ErrorCode, secrets...), redact.Text(e.ErrorDescription, secrets...)
	}
	return row
}

// payloadSecrets returns the secrets inside a stored payload, to cut from error texts.
func payloadSecrets(raw []byte) []string {
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil
	}
	return redact.SecretValues(v)
}

func sortedCodes(codes map[string]bool) []string {
	delete(codes, "")
	return slices.Sorted(maps.Keys(codes))
}
