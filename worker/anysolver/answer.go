package anysolver

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/solvequeue/solvequeue/classify"
)

// maxDescriptionBytes bounds the errorDescription an APIError's text shows, so a
// hostile or broken server cannot make error strings (and logs) huge.
const maxDescriptionBytes = 512

// maxCodeBytes bounds the errorCode an APIError's text shows; real codes are short.
const maxCodeBytes = 128

// answer is one AnySolver answer that reported no error, checked to carry
// what its call needs.
type answer struct {
	TaskID     TaskID
	Status     Status
	Solution   json.RawMessage
	Cost       float64
	CreateTime int64
	EndTime    int64
	Balance    float64
}

// wireAnswer takes every field raw, so a field of an unexpected JSON kind is
// judged by the rules below instead of failing the whole decode.
type wireAnswer struct {
	ErrorID          json.RawMessage `json:"errorId"`
	ErrorCode        json.RawMessage `json:"errorCode"`
	ErrorDescription json.RawMessage `json:"errorDescription"`
	TaskID           json.RawMessage `json:"taskId"`
	Status           json.RawMessage `json:"status"`
	Solution         json.RawMessage `json:"solution"`
	Cost             json.RawMessage `json:"cost"`
	CreateTime       json.RawMessage `json:"createTime"`
	EndTime          json.RawMessage `json:"endTime"`
	Balance          json.RawMessage `json:"balance"`
}

// parseAnswer reads the body of one AnySolver answer to call, which came
// with HTTP status httpStatus. It returns the answer, an *APIError when
// AnySolver reported an error (errorId other than 0, or status "failed"), or
// a *TransportError when the body is not a usable answer. It never panics and
// never puts body bytes in an error.
//
// The rules: the body must be one JSON object. A non-2xx status is an APIError
// if the body is a JSON error answer, else FailureHTTPStatus. A missing
// errorId counts as 0 unless an errorCode is present. status "failed" is an
// error whatever errorId says; when errorId is 0 or missing there, ErrorID
// comes from the seed table for the code (1 for codes not in it). A ready
// answer must carry a solution object; createTask otherwise needs a taskId,
// getTaskResult a known status and getBalance a balance. cost, createTime and
// endTime are optional: numbers or numeric strings, ignored when unreadable.
//
// scrub (nil for none) cuts secrets out of the server's text — the errorCode, the
// errorDescription and the solution — before anything else reads it. The code and description
// are kept whole (the body is bounded already): whoever stores them redacts what it alone knows
// (a job's proxy password) first and cuts them to size after, so that no cut leaves a secret's
// first bytes behind.
func parseAnswer(body []byte, call classify.Call, httpStatus int, scrub func(string) string) (answer, error) {
	if scrub == nil {
		scrub = func(s string) string { return s }
	}
	ok2xx := httpStatus >= 200 && httpStatus <= 299
	var w wireAnswer
	if err := decodeObject(body, &w); err != nil {
		if !ok2xx {
			return answer{}, &TransportError{Call: call, Failure: classify.FailureHTTPStatus, HTTPStatus: httpStatus,
				Err: fmt.Errorf("answer is not a JSON error: %w", err)}
		}
		return answer{}, badBody(call, httpStatus, err)
	}

	errID, hasErrID, err := intValue(w.ErrorID)
	if err != nil {
		return answer{}, badBody(call, httpStatus, fmt.Errorf("errorId: %w", err))
	}
	code, err := stringValue(w.ErrorCode)
	if err != nil {
		return answer{}, badBody(call, httpStatus, fmt.Errorf("errorCode: %w", err))
	}
	status, err := stringValue(w.Status)
	if err != nil {
		return answer{}, badBody(call, httpStatus, fmt.Errorf("status: %w", err))
	}
	if errID != 0 || Status(status) == StatusFailed || (!hasErrID && code != "") {
		if errID == 0 {
			errID = seedErrorID(code)
		}
		return answer{}, &APIError{Call: call, ErrorID: int(errID), ErrorCode: scrub(code),
			ErrorDescription: scrub(description(w.ErrorDescription)), HTTPStatus: httpStatus, TaskFailed: Status(status) == StatusFailed}
	}
	if !ok2xx {
		return answer{}, &TransportError{Call: call, Failure: classify.FailureHTTPStatus, HTTPStatus: httpStatus,
			Err: errors.New("answer carries no AnySolver error")}
	}

	a := answer{
		Status:     Status(status),
		Cost:       lenientFloat(w.Cost),
		CreateTime: int64(lenientFloat(w.CreateTime)),
		EndTime:    int64(lenientFloat(w.EndTime)),
	}
	if !isNull(w.TaskID) {
		if a.TaskID, err = ParseTaskID(w.TaskID); err != nil {
			return answer{}, badBody(call, httpStatus, err)
		}
	}
	if a.Status == StatusReady {
		if !isObject(w.Solution) {
			return answer{}, badBody(call, httpStatus, errors.New(`status "ready" without a solution object`))
		}
		a.Solution = json.RawMessage(scrub(string(w.Solution)))
	}

	switch call {
	case classify.CallCreateTask:
		switch a.Status {
		case StatusReady:
		case "", StatusIdle, StatusProcessing:
			if a.TaskID.IsZero() {
				return answer{}, badBody(call, httpStatus, errors.New("errorId 0 but no taskId"))
			}
		default:
			return answer{}, badBody(call, httpStatus, fmt.Errorf("unknown status %q", truncate(status, 64)))
		}
	case classify.CallGetTaskResult:
		switch a.Status {
		case StatusReady, StatusIdle, StatusProcessing:
		case "":
			return answer{}, badBody(call, httpStatus, errors.New("errorId 0 but no status"))
		default:
			return answer{}, badBody(call, httpStatus, fmt.Errorf("unknown status %q", truncate(status, 64)))
		}
	case classify.CallGetBalance:
		if a.Balance, err = floatValue(w.Balance); err != nil {
			return answer{}, badBody(call, httpStatus, fmt.Errorf("balance: %w", err))
		}
	}
	return a, nil
}

func badBody(call classify.Call, httpStatus int, err error) error {
	return &TransportError{Call: call, Failure: classify.FailureBadBody, HTTPStatus: httpStatus, Err: err}
}

// decodeObject decodes body into w if body is exactly one JSON object.
func decodeObject(body []byte, w *wireAnswer) error {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return errors.New("empty body")
	}
	if trimmed[0] != '{' {
		return errors.New("body is not a JSON object")
	}
	return json.Unmarshal(trimmed, w)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

func isObject(raw json.RawMessage) bool {
	return len(raw) > 0 && raw[0] == '{'
}

// intValue reads an integer given as a JSON number or a numeric string.
// present is false for a missing or null field.
func intValue(raw json.RawMessage) (v int64, present bool, err error) {
	if isNull(raw) {
		return 0, false, nil
	}
	f, err := floatValue(raw)
	if err != nil {
		return 0, true, err
	}
	if f != math.Trunc(f) || math.Abs(f) > 1<<53 {
		return 0, true, errors.New("not an integer")
	}
	return int64(f), true, nil
}

// floatValue reads a finite number given as a JSON number or a numeric string.
func floatValue(raw json.RawMessage) (float64, error) {
	if isNull(raw) {
		return 0, errors.New("missing")
	}
	text := string(raw)
	if raw[0] == '"' {
		if err := json.Unmarshal(raw, &text); err != nil {
			return 0, errors.New("not a string")
		}
	} else if raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return 0, errors.New("not a number")
	}
	f, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, errors.New("not a finite number")
	}
	return f, nil
}

// lenientFloat is floatValue for optional fields: 0 when missing or unreadable.
func lenientFloat(raw json.RawMessage) float64 {
	f, err := floatValue(raw)
	if err != nil {
		return 0
	}
	return f
}

// stringValue reads a JSON string; a missing or null field gives "".
func stringValue(raw json.RawMessage) (string, error) {
	if isNull(raw) {
		return "", nil
	}
	if raw[0] != '"' {
		return "", errors.New("not a string")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", errors.New("not a string")
	}
	return s, nil
}

// description reads errorDescription leniently (it never drives a decision).
func description(raw json.RawMessage) string {
	s, err := stringValue(raw)
	if err != nil {
		return ""
	}
	return s
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

var seedIDs = sync.OnceValue(func() map[string]int {
	ids := make(map[string]int)
	for _, c := range classify.SeedCodes() {
		ids[c.ErrorCode] = c.ErrorID
	}
	return ids
})

// seedErrorID is the errorId the seed table gives code, or 1 (an external
// error) for codes it does not list.
func seedErrorID(code string) int64 {
	if id, ok := seedIDs()[code]; ok {
		return int64(id)
	}
	return 1
}
