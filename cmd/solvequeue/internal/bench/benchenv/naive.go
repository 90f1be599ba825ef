package benchenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/hibiken/asynq"
)

// The baselines: what a Go user of asynq writes by hand, with nothing of solvequeue in it.

// naiveTaskType is the asynq task type of the baselines' jobs.
const naiveTaskType = "naive:solve"

// naivePayload is a baseline job: the AnySolver task, as our jobs carry it.
type naivePayload struct {
	Task map[string]any `json:"task"`
}

// NewNaiveTask returns a baseline job for queue with that websiteKey.
func NewNaiveTask(queue, websiteKey string) (*asynq.Task, error) {
	data, err := json.Marshal(naivePayload{Task: map[string]any{
		"type": TaskType, "websiteURL": "https://bench.example/login", "websiteKey": websiteKey}})
	if err != nil {
		return nil, err
	}
	// Retention keeps the solution written with ResultWriter, as our jobs keep their outcome.
	return asynq.NewTask(naiveTaskType, data, asynq.Queue(queue), asynq.Retention(24*time.Hour)), nil
}

// NaiveSolver is the naive handler: createTask, then getTaskResult until ready (every 3 s),
// with net/http's default client and encoding/json, the solution stored with ResultWriter.
// Every error is returned as it is, so asynq retries it (25 times by default): no
// classification, no crash record, no metrics.
type NaiveSolver struct {
	BaseURL string
	Key     string
}

type naiveAnswer struct {
	ErrorID   int             `json:"errorId"`
	ErrorCode string          `json:"errorCode"`
	TaskID    json.RawMessage `json:"taskId"`
	Status    string          `json:"status"`
	Solution  json.RawMessage `json:"solution"`
}

func (n *NaiveSolver) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p naivePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return err
	}
	var created naiveAnswer
	if err := n.call(ctx, "createTask", map[string]any{"clientKey": n.Key, "task": p.Task}, &created); err != nil {
		return err
	}
	if created.ErrorID != 0 {
		return fmt.Errorf("createTask: %s", created.ErrorCode)
	}
	for {
		var res naiveAnswer
		if err := n.call(ctx, "getTaskResult", map[string]any{"clientKey": n.Key, "taskId": created.TaskID}, &res); err != nil {
			return err
		}
		switch {
		case res.ErrorID != 0 || res.Status == "failed":
			return fmt.Errorf("getTaskResult: %s", res.ErrorCode)
		case res.Status == "ready":
			_, err := t.ResultWriter().Write(res.Solution)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(3 * time.Second):
		}
	}
}

func (n *NaiveSolver) call(ctx context.Context, method string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.BaseURL+"/"+method, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return json.Unmarshal(raw, out)
}

// AsynqLogger sends a plain asynq server's log lines to the bench's progress output.
type AsynqLogger struct{ Env *Env }

func (l AsynqLogger) Debug(args ...any) {}
func (l AsynqLogger) Info(args ...any)  {}
func (l AsynqLogger) Warn(args ...any) {
	if msg := fmt.Sprint(args...); !strings.HasPrefix(msg, "Retry exhausted") {
		l.Env.Logf("asynq: %s", msg)
	}
}
func (l AsynqLogger) Error(args ...any) { l.Env.Logf("asynq: %s", fmt.Sprint(args...)) }
func (l AsynqLogger) Fatal(args ...any) { l.Env.Logf("asynq: %s", fmt.Sprint(args...)) }
