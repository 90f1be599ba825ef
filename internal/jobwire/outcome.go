package jobwire

import (
	"encoding/json"
	"time"

	"github.com/hibiken/asynq"
)

// OutcomeOf maps asynq's view of a task and the worker's record onto an Outcome.
func OutcomeOf(info *asynq.TaskInfo) Outcome {
	rec, _ := DecodeRecord(info.Result)
	out := Outcome{ID: info.ID, Queue: info.Queue, Solution: rec.Solution, Error: rec.Error,
		Attempts: rec.Attempts, CreateTasks: rec.CreateTasks, Polls: rec.Polls, Retries: rec.Retries,
		Throttles: rec.Throttles, Cost: rec.Cost, FinishedAt: rec.FinishedAt, ExpiresAt: rec.ExpiresAt, NextRunAt: info.NextProcessAt,
		Provider: rec.Provider, ProvidersTried: rec.ProvidersTried}
	var p Payload
	if json.Unmarshal(info.Payload, &p) == nil {
		out.SubmittedAt, out.Deadline = p.SubmittedAt, p.Deadline
	}
	switch info.State {
	case asynq.TaskStatePending, asynq.TaskStateAggregating:
		out.State = StatePending
	case asynq.TaskStateScheduled:
		out.State = StateScheduled
	case asynq.TaskStateActive:
		out.State = StateActive
	case asynq.TaskStateRetry:
		out.State = StateRetrying
	case asynq.TaskStateArchived:
		out.State = StateDead
		if out.Error == nil {
			out.Error = &ErrorInfo{ErrorCode: "WORKER_ERROR", ErrorDescription: info.LastErr, Decision: "dead"}
		}
	case asynq.TaskStateCompleted:
		out.State = rec.State
		if !rec.State.Terminal() {
			out.State = StateSolved
		}
	}
	if out.State.Terminal() {
		out.NextRunAt = time.Time{}
	} else {
		out.Solution = nil
	}
	if out.State != StateSolved {
		out.ExpiresAt = time.Time{} // only a solved outcome carries a token
	}
	return out
}
