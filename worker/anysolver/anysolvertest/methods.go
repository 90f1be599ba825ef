package anysolvertest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

type createTaskRequest struct {
	ClientKey string         `json:"clientKey"`
	Task      map[string]any `json:"task"`
	Provider  string         `json:"provider"`
	Settings  map[string]any `json:"settings"`
}

// createTask checks the key and the task, asks the Script, then answers a fault, an error
// (not charged) or a new task (charged): its id, or the solution at once.
func (s *Server) createTask(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req createTaskRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, "INVALID_TASK_DATA", 0, "request is not a createTask JSON object: "+err.Error())
		return
	}
	if !s.keyOK(req.ClientKey) {
		writeError(w, "ERROR_KEY_DOES_NOT_EXIST", 0, "")
		return
	}
	typ, _ := req.Task["type"].(string)
	if typ == "" {
		writeError(w, "INVALID_TASK_DATA", 0, `task.type is missing`)
		return
	}
	t := Task{Type: typ, Fields: req.Task, Provider: req.Provider, Settings: req.Settings, Key: TaskKey(req.Task)}

	s.mu.Lock()
	s.sweepLocked(now)
	ks := s.keyStatsLocked(t.Key, now)
	t.Attempt = ks.creates
	ks.creates++
	s.counts.Creates++
	script := s.script
	s.mu.Unlock()

	b := script(t)
	if b.CreateHTTP != FaultNone {
		s.serveFault(w, r, b.CreateHTTP)
		return
	}
	solveTime := b.SolveTime
	if b.SolveTimeFunc != nil {
		solveTime = b.SolveTimeFunc()
	}
	if b.Immediate || solveTime < 0 {
		solveTime = 0
	}

	s.mu.Lock()
	if s.balance <= 0 {
		s.mu.Unlock()
		writeError(w, "ERROR_ZERO_BALANCE", 0, "")
		return
	}
	if b.CreateError != "" {
		s.mu.Unlock()
		writeError(w, b.CreateError, b.CreateErrorID, b.CreateErrorDescription)
		return
	}
	task := s.newTaskLocked(t.Key, now, solveTime)
	task.pollError, task.pollFailed, task.pollHTTP = b.PollError, b.PollFailed, b.PollHTTP
	task.solution = solutionJSON(b.Solution, typ, task.id)
	if b.Immediate {
		s.answeredLocked(task, true)
	}
	s.mu.Unlock()

	if b.Immediate {
		writeJSON(w, http.StatusOK, readyAnswer(task))
		return
	}
	writeJSON(w, http.StatusOK, wireAnswer{TaskID: task.idJSON()})
}

// solutionJSON is the task's solution object: the Behavior's, or a default for its type.
func solutionJSON(sol map[string]any, typ, id string) json.RawMessage {
	if sol == nil {
		if isImageTask(typ) {
			sol = map[string]any{"text": "fake-text-" + id}
		} else {
			token := "fake-token-" + id
			sol = map[string]any{"gRecaptchaResponse": token, "token": token}
		}
	}
	b, err := json.Marshal(sol)
	if err != nil {
		b, _ = json.Marshal(map[string]string{"error": "fake: Behavior.Solution is not JSON: " + err.Error()})
	}
	return b
}

func readyAnswer(t *remoteTask) wireAnswer {
	var cost any = t.cost
	if t.costString {
		cost = fmt.Sprintf("%.4f", t.cost)
	}
	return wireAnswer{
		TaskID:     t.idJSON(),
		Status:     "ready",
		Solution:   t.solution,
		Cost:       cost,
		CreateTime: t.created.Unix(),
		EndTime:    t.ready.Unix(),
	}
}

type getTaskResultRequest struct {
	ClientKey string          `json:"clientKey"`
	TaskID    json.RawMessage `json:"taskId"`
}

// getTaskResult answers a poll: TASK_NOT_FOUND for unknown, expired or over-polled tasks, the
// task's scripted fault or error, "idle" for its first quarter of solve time, "processing" until
// ready, then "failed" or "ready".
func (s *Server) getTaskResult(w http.ResponseWriter, r *http.Request, body []byte, now time.Time) {
	var req getTaskResultRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, "INVALID_TASK_DATA", 0, "request is not a getTaskResult JSON object: "+err.Error())
		return
	}
	if !s.keyOK(req.ClientKey) {
		writeError(w, "ERROR_KEY_DOES_NOT_EXIST", 0, "")
		return
	}
	id, numeric, ok := parseTaskID(req.TaskID)
	if !ok {
		writeError(w, "INVALID_TASK_DATA", 0, "taskId is missing or not a string or number")
		return
	}

	s.mu.Lock()
	s.sweepLocked(now)
	t := s.tasks[id]
	if t == nil || t.numeric != numeric {
		s.mu.Unlock()
		writeError(w, "TASK_NOT_FOUND", 0, "")
		return
	}
	s.keyStatsLocked(t.key, now).polls++
	t.polls++
	if s.expired(t, now) || t.polls > MaxPolls {
		s.forgetLocked(t)
		s.mu.Unlock()
		desc := ""
		if t.polls > MaxPolls {
			desc = fmt.Sprintf("Task polled more than %d times; it is forgotten.", MaxPolls)
		}
		writeError(w, "TASK_NOT_FOUND", 0, desc)
		return
	}
	var a wireAnswer
	switch {
	case t.pollHTTP != FaultNone:
		s.mu.Unlock()
		s.serveFault(w, r, t.pollHTTP)
		return
	case t.pollError != "":
		a = errorAnswer(t.pollError, 0, "")
	case now.Before(t.created.Add(t.solveTime / 4)):
		a = wireAnswer{Status: "idle"}
	case now.Before(t.ready):
		a = wireAnswer{Status: "processing"}
	case t.pollFailed != "":
		s.answeredLocked(t, false)
		a = errorAnswer(t.pollFailed, 0, "")
		a.Status = "failed"
		if t.numeric {
			a.ErrorID = 0 // "failed" is an error whatever errorId says
		}
	default:
		s.answeredLocked(t, true)
		a = readyAnswer(t)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, a)
}

// parseTaskID reads a taskId as the client sent it: its text and whether it was a number.
func parseTaskID(raw json.RawMessage) (id string, numeric, ok bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "", false, false
	}
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &id); err != nil || id == "" {
			return "", false, false
		}
		return id, false, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return "", false, false
	}
	return n.String(), true, true
}

// getBalance answers the account's balance.
func (s *Server) getBalance(w http.ResponseWriter, body []byte) {
	var req struct {
		ClientKey string `json:"clientKey"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, "INVALID_TASK_DATA", 0, "request is not a getBalance JSON object: "+err.Error())
		return
	}
	if !s.keyOK(req.ClientKey) {
		writeError(w, "ERROR_KEY_DOES_NOT_EXIST", 0, "")
		return
	}
	b := s.Balance()
	writeJSON(w, http.StatusOK, wireAnswer{Balance: &b})
}
