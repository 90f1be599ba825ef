// Package spend runs the budget watcher: it resumes the queues a spent budget paused once their
// window has room again, and reports every budget's spend to the metrics.
//
// The budgets themselves are the shared ledger's (internal/ledger); reserving and settling a
// createTask's cost is the attempt machine's.
package spend

import (
	"context"
	"log/slog"
	"time"

	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/loop"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// CheckIntervalDefault is how often the budget watcher looks at the queues with a budget.
const CheckIntervalDefault = time.Second

// Params configure a Watcher.
type Params struct {
	Ledger   *ledger.Ledger
	Policy   *policyfile.Policy
	Queues   []string
	Interval time.Duration
	Observer Observer
	Log      *slog.Logger
}

// Observer is told each budget's spend whenever the watcher reads it (metrics.Observer is one).
type Observer interface {
	BudgetRead(u ledger.Usage)
}

// Watcher resumes the queues a spent budget paused once their window frees room, and reports
// every budget's spend to the metrics.
type Watcher struct {
	Params
	checker *loop.Loop
}

// New returns a Watcher; Start runs it.
func New(p Params) *Watcher { return &Watcher{Params: p} }

// Start runs the watcher until Shutdown; a worker serving no queue with a budget runs none.
func (w *Watcher) Start(ctx context.Context) {
	var queues []string
	for _, q := range w.Queues {
		if w.Policy.Queue(q).Budget != nil {
			queues = append(queues, q)
		}
	}
	if len(queues) == 0 {
		return
	}
	w.checker = loop.Every(ctx, w.Interval, true, func(ctx context.Context) {
		for _, q := range queues {
			w.Check(ctx, q)
		}
	})
}

// Check resumes queue if its budget has room again and reports its spend.
func (w *Watcher) Check(ctx context.Context, queue string) {
	b := w.Policy.Queue(queue).Budget
	resumed, err := w.Ledger.ResumeIfRoom(ctx, queue, *b)
	if err != nil {
		return // Redis trouble: the health watcher says so once
	}
	if resumed {
		w.Log.Info("budget has room again: queue resumed", "queue", queue)
	}
	if u, err := w.Ledger.Read(ctx, queue, *b); err == nil {
		w.Observer.BudgetRead(u)
	}
}

// Shutdown stops the watcher and waits for it.
func (w *Watcher) Shutdown() { w.checker.Stop() }
