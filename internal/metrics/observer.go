package metrics

import (
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/ledger"
)

// Observer is told what the worker does, for metrics. Implementations must be safe for
// concurrent use and cheap: they run on the solve path. Metrics implements it for Prometheus.
type Observer interface {
	// JobEnded is called once per terminal outcome a worker records.
	JobEnded(e JobEnd)
	// AttemptRescheduled is called when an attempt ends in a retry, a throttle or a failover
	// (DecisionFailover).
	AttemptRescheduled(decision, code string)
	// Called is called after every AnySolver call; outcome is "ok" or the error code.
	Called(method, outcome string, took time.Duration)
	// BreakerChanged is called when this worker opens or closes the account breaker.
	BreakerChanged(open bool, code string)
	// Spent is called when a createTask on a queue with a budget is settled with its cost.
	Spent(queue string, cost float64)
	// BudgetRead is called with a queue's spend whenever the worker reads its budget.
	BudgetRead(u ledger.Usage)
	// ProviderResult is called when a createTask that named a provider ends: code is "" when
	// the task was solved (solveTime is then how long it took), else the error's code.
	ProviderResult(provider, code string, solveTime time.Duration)
}

// DecisionFailover is the decision an attempt reports when it moves a job to its next provider.
const DecisionFailover = "failover"

// JobEnd describes a job that reached a terminal state.
type JobEnd struct {
	ID          string // the job's ID: not a metric label, ever
	Queue       string
	TaskType    string
	State       enqueue.State
	Code        string // the error code of a failed or dead job; "" when solved
	Attempts    int
	CreateTasks int
	Polls       int
	Cost        float64
	SolveTime   time.Duration // from the remote task's creation to its solution (solved only)
	EndToEnd    time.Duration // from submission to the outcome
}

// NopObserver does nothing with what it is told. Embed it in an Observer of your own to
// implement only the methods you need; methods added to Observer later then do nothing for you.
type NopObserver struct{}

func (NopObserver) JobEnded(JobEnd)                              {}
func (NopObserver) AttemptRescheduled(string, string)            {}
func (NopObserver) Called(string, string, time.Duration)         {}
func (NopObserver) BreakerChanged(bool, string)                  {}
func (NopObserver) Spent(string, float64)                        {}
func (NopObserver) BudgetRead(ledger.Usage)                      {}
func (NopObserver) ProviderResult(string, string, time.Duration) {}

// Observers tells each of its observers everything.
type Observers []Observer

func (o Observers) JobEnded(e JobEnd) {
	for _, x := range o {
		x.JobEnded(e)
	}
}
func (o Observers) AttemptRescheduled(decision, code string) {
	for _, x := range o {
		x.AttemptRescheduled(decision, code)
	}
}
func (o Observers) Called(method, outcome string, took time.Duration) {
	for _, x := range o {
		x.Called(method, outcome, took)
	}
}
func (o Observers) BreakerChanged(open bool, code string) {
	for _, x := range o {
		x.BreakerChanged(open, code)
	}
}
func (o Observers) Spent(queue string, cost float64) {
	for _, x := range o {
		x.Spent(queue, cost)
	}
}
func (o Observers) BudgetRead(u ledger.Usage) {
	for _, x := range o {
		x.BudgetRead(u)
	}
}
func (o Observers) ProviderResult(provider, code string, solveTime time.Duration) {
	for _, x := range o {
		x.ProviderResult(provider, code, solveTime)
	}
}
