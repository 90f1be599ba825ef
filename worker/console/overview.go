package console

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/hibiken/asynq"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/tally"
	"github.com/solvequeue/solvequeue/worker"
)

// The overview's two windows.
var windows = []time.Duration{time.Hour, 24 * time.Hour}

// overviewData is what the overview page shows.
type overviewData struct {
	Breaker   worker.BreakerState
	Balance   *balance.Balance
	BalanceNA string // why no balance is shown
	Queues    []queueRow
	Windows   []windowData
	Providers []providerRow
	Problems  []string // reads that failed: the page shows the rest
}

// queueRow is one queue: what waits in it now, and what ended in each window.
type queueRow struct {
	Name                                 string
	Paused                               bool
	Unserved                             bool // no running worker serves it: its jobs wait
	Pending, Active, Scheduled, Retrying int
	Dead, Failed                         int
	Latency                              time.Duration
	Ended                                []endedCell // one per window
	Budget                               *ledger.Usage
}

// endedCell is one queue's ended jobs in one window.
type endedCell struct {
	Solved, Failed, Dead int64
	CreateTasksPerJob    string
	Cost                 float64
}

// windowData is the codes jobs ended with in one window, every queue together.
type windowData struct {
	Name  string
	Jobs  int64
	Codes []codeRow
}

type codeRow struct {
	Queue string
	State enqueue.State
	Code  string
	Jobs  int64
}

// providerRow is one provider: its createTask results per window and its breaker.
type providerRow struct {
	Name      string
	Windows   []providerCell
	Fails     int64
	OpenUntil time.Time
}

type providerCell struct {
	Tasks, Solved, Errors int64
	ErrorRate             string
	TopError              string
}

func windowName(d time.Duration) string {
	if d == time.Hour {
		return "last hour"
	}
	return "last " + strconv.Itoa(int(d/time.Hour)) + " h"
}

func (c *console) overview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := c.readCtx(r)
	defer cancel()
	d := c.readOverview(ctx)
	c.render(w, r, http.StatusOK, "overview", page{Title: "Overview", Nav: "overview", Data: d})
}

// readOverview reads everything the overview shows; a read that fails is named in Problems and
// the rest is shown.
func (c *console) readOverview(ctx context.Context) overviewData {
	var d overviewData
	problem := func(what string, err error) {
		d.Problems = append(d.Problems, what+": "+redactError(err))
	}
	var err error
	if d.Breaker, err = breaker.Read(ctx, c.rc); err != nil {
		problem("breaker", err)
	}
	if b, err := c.client.Balance(ctx); err == nil {
		d.Balance = &b
	} else {
		d.BalanceNA = redactError(err)
	}

	queues, err := c.queueNames(ctx)
	if err != nil {
		problem("queues", err)
	}
	// Each queue's dead letters are a hash of their own: counted without reading their payloads.
	deadBy := map[string]int{}
	for _, q := range queues {
		n, err := c.rc.HLen(ctx, keys.DeadLetters(q)).Result()
		if err != nil {
			problem("dead letters", err)
			break
		}
		deadBy[q] = int(n)
	}
	unserved, err := c.producer.Unserved(queues...)
	if err != nil {
		problem("workers", err)
	}
	tallies, err := tally.Read(ctx, c.rc, queues, c.cfg.Now(), windows...)
	if err != nil {
		problem("ended jobs", err)
		tallies = make([]tally.Ended, len(windows))
	}
	lg := ledger.New(c.rc)
	for _, q := range queues {
		row := queueRow{Name: q, Dead: deadBy[q], Unserved: slices.Contains(unserved, q)}
		if info, err := c.inspector.GetQueueInfo(q); err == nil {
			row.Paused, row.Pending, row.Active, row.Scheduled, row.Retrying = info.Paused, info.Pending, info.Active, info.Scheduled, info.Retry
			row.Latency = info.Latency
		} else if !errors.Is(err, asynq.ErrQueueNotFound) {
			problem("queue "+q, err)
		}
		if n, err := c.rc.ZCard(ctx, keys.Failed(q)).Result(); err == nil {
			row.Failed = int(n)
		}
		for _, t := range tallies {
			row.Ended = append(row.Ended, endedOf(t.Queues[q]))
		}
		if b := c.cfg.Policy.Queue(q).Budget; b != nil {
			if u, err := lg.Read(ctx, q, *b); err == nil {
				row.Budget = &u
			} else {
				problem("budget of "+q, err)
			}
		}
		d.Queues = append(d.Queues, row)
	}
	for i, t := range tallies {
		wd := windowData{Name: windowName(windows[i])}
		for _, q := range queues {
			qe := t.Queues[q]
			if qe == nil {
				continue
			}
			wd.Jobs += qe.Jobs
			for _, cc := range qe.ByCode {
				wd.Codes = append(wd.Codes, codeRow{Queue: q, State: cc.State, Code: cc.Code, Jobs: cc.Jobs})
			}
		}
		sort.SliceStable(wd.Codes, func(a, b int) bool { return wd.Codes[a].Jobs > wd.Codes[b].Jobs })
		d.Windows = append(d.Windows, wd)
	}
	d.Providers = c.providers(ctx, tallies)
	return d
}

// queueNames is every job queue asynq knows and every queue the policy names, sorted. The
// worker's queue of callback deliveries, whose name no job's queue may have, is not one.
func (c *console) queueNames(ctx context.Context) ([]string, error) {
	names := map[string]bool{}
	qs, err := c.inspector.Queues()
	for _, q := range qs {
		if queuereg.ValidName(q) {
			names[q] = true
		}
	}
	for q := range c.cfg.Policy.Queues() {
		names[q] = true
	}
	return slices.Sorted(maps.Keys(names)), err
}

func endedOf(q *tally.QueueEnded) endedCell {
	if q == nil {
		return endedCell{CreateTasksPerJob: "–"}
	}
	cell := endedCell{Solved: q.ByState[enqueue.StateSolved], Failed: q.ByState[enqueue.StateFailed],
		Dead: q.ByState[enqueue.StateDead], Cost: q.Cost, CreateTasksPerJob: "–"}
	if q.Jobs > 0 {
		cell.CreateTasksPerJob = strconv.FormatFloat(float64(q.CreateTasks)/float64(q.Jobs), 'f', 2, 64)
	}
	return cell
}

// providers is every provider the tally or the policy names, with its breaker.
func (c *console) providers(ctx context.Context, tallies []tally.Ended) []providerRow {
	names := map[string]bool{}
	for _, t := range tallies {
		for p := range t.Providers {
			names[p] = true
		}
	}
	for _, qp := range c.cfg.Policy.Queues() {
		for _, p := range qp.Providers {
			names[p] = true
		}
	}
	var rows []providerRow
	for _, name := range slices.Sorted(maps.Keys(names)) {
		row := providerRow{Name: name}
		for _, t := range tallies {
			row.Windows = append(row.Windows, providerCellOf(t.Providers[name]))
		}
		if h, err := c.rc.HGetAll(ctx, keys.Provider(name)).Result(); err == nil {
			row.Fails, _ = strconv.ParseInt(h["fails"], 10, 64)
			if ms, _ := strconv.ParseInt(h["openUntil"], 10, 64); ms > 0 {
				row.OpenUntil = time.UnixMilli(ms).UTC()
			}
		}
		rows = append(rows, row)
	}
	return rows
}

func providerCellOf(p *tally.ProviderEnded) providerCell {
	if p == nil {
		return providerCell{ErrorRate: "–"}
	}
	cell := providerCell{Tasks: p.Tasks(), Solved: p.Solved, Errors: p.Tasks() - p.Solved, ErrorRate: "–"}
	if cell.Tasks > 0 {
		cell.ErrorRate = strconv.FormatFloat(100*p.ErrorRate(), 'f', 1, 64) + " %"
	}
	var top int64
	for code, n := range p.Errors {
		if n > top || (n == top && code < cell.TopError) {
			top, cell.TopError = n, code
		}
	}
	return cell
}

// redactError is an error's text with any URL password cut (a Redis URL in a dial error).
func redactError(err error) string { return redact.Text(err.Error()) }
