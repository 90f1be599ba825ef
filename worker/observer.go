package worker

import (
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
)

// Observer is told what the worker does, for metrics. Implementations must be safe for
// concurrent use and cheap: they run on the solve path. Metrics implements it for Prometheus.
type Observer interface {
	// JobEnded is called once per terminal outcome a worker records.
	JobEnded(e JobEnd)
	// AttemptRescheduled is called when an attempt ends in a retry or a throttle.
	AttemptRescheduled(decision, code string)
	// Called is called after every AnySolver call; outcome is "ok" or the error code.
	Called(method, outcome string, took time.Duration)
	// BreakerChanged is called when this worker opens or closes the account breaker.
	BreakerChanged(open bool, code string)
}

// JobEnd describes a job that reached a terminal state.
type JobEnd struct {
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

type nopObserver struct{}

func (nopObserver) JobEnded(JobEnd)                      {}
func (nopObserver) AttemptRescheduled(string, string)    {}
func (nopObserver) Called(string, string, time.Duration) {}
func (nopObserver) BreakerChanged(bool, string)          {}
