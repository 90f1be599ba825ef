package anysolver

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/solvequeue/solvequeue/classify"
)

// CreateTaskRequest is one createTask call's content; the client adds the clientKey.
type CreateTaskRequest struct {
	// Task is AnySolver's task object, sent as given: "type" and the type's fields.
	Task map[string]any
	// Provider, when set, is sent as the top-level "provider" (e.g. "CapSolver").
	Provider string
	// Settings, when not empty, is sent as the top-level "settings" object.
	Settings map[string]any
}

type createTaskBody struct {
	ClientKey string         `json:"clientKey"`
	Task      map[string]any `json:"task"`
	Provider  string         `json:"provider,omitempty"`
	Settings  map[string]any `json:"settings,omitempty"`
}

// CreateTaskResult is createTask's answer.
//
// Ready is true when AnySolver solved the task at once (image-to-text) and put the solution in
// this answer: no polling then, and TaskID may be zero. Otherwise TaskID is set (never zero)
// and the result is fetched with GetTaskResult.
type CreateTaskResult struct {
	TaskID   TaskID
	Ready    bool
	Solution json.RawMessage
	Cost     float64
}

// Status is a remote task's state in a getTaskResult answer.
type Status string

// Task states. StatusFailed never reaches a TaskResult: it comes back as an *APIError.
const (
	StatusIdle       Status = "idle"
	StatusProcessing Status = "processing"
	StatusReady      Status = "ready"
	StatusFailed     Status = "failed"
)

// TaskResult is getTaskResult's answer: Status is idle, processing or ready. When ready,
// Solution is AnySolver's solution object, whole; Cost (0 when not given), CreateTime and
// EndTime (Unix seconds, 0 when not given) are as reported.
type TaskResult struct {
	Status     Status
	Solution   json.RawMessage
	Cost       float64
	CreateTime int64
	EndTime    int64
}

// CreateTask creates a remote task; it is paid, so the caller records TaskID before polling.
// It returns ErrEmptyTask for an empty Task, without a call.
func (c *Client) CreateTask(ctx context.Context, req CreateTaskRequest) (CreateTaskResult, error) {
	if len(req.Task) == 0 {
		return CreateTaskResult{}, ErrEmptyTask
	}
	payload, err := json.Marshal(createTaskBody{ClientKey: c.key, Task: req.Task, Provider: req.Provider, Settings: req.Settings})
	if err != nil {
		return CreateTaskResult{}, c.redact(fmt.Errorf("anysolver: createTask: encode the task: %w", err))
	}
	a, err := c.do(ctx, classify.CallCreateTask, payload)
	if err != nil {
		return CreateTaskResult{}, err
	}
	return CreateTaskResult{TaskID: a.TaskID, Ready: a.Status == StatusReady, Solution: a.Solution, Cost: a.Cost}, nil
}

// GetTaskResult asks for a remote task's state once. A task that failed remotely (status
// "failed") comes back as an *APIError with its errorCode. It returns ErrZeroTaskID for the
// zero id, without a call.
func (c *Client) GetTaskResult(ctx context.Context, id TaskID) (TaskResult, error) {
	if id.IsZero() {
		return TaskResult{}, ErrZeroTaskID
	}
	idJSON, _ := id.MarshalJSON() // never fails
	payload := make([]byte, 0, len(c.keyJSON)+len(idJSON)+26)
	payload = append(payload, `{"clientKey":`...)
	payload = append(payload, c.keyJSON...)
	payload = append(payload, `,"taskId":`...)
	payload = append(payload, idJSON...)
	payload = append(payload, '}')
	a, err := c.do(ctx, classify.CallGetTaskResult, payload)
	if err != nil {
		return TaskResult{}, err
	}
	return TaskResult{Status: a.Status, Solution: a.Solution, Cost: a.Cost, CreateTime: a.CreateTime, EndTime: a.EndTime}, nil
}

// GetBalance returns the account's balance. A provider without balances answers
// PROVIDER_BALANCE_NOT_SUPPORTED, an *APIError.
func (c *Client) GetBalance(ctx context.Context) (float64, error) {
	a, err := c.do(ctx, classify.CallGetBalance, c.balance)
	if err != nil {
		return 0, err
	}
	return a.Balance, nil
}
