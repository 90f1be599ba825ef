package anysolver

import (
	"errors"
	"fmt"

	"github.com/solvequeue/solvequeue/classify"
)

// Sentinel errors for requests the client refuses before any network call.
// They are programming or job errors, not AnySolver answers, so
// AsClassifyError returns ok=false for them.
var (
	// ErrEmptyTask is returned by CreateTask when the request has no task.
	ErrEmptyTask = errors.New("anysolver: createTask: CreateTaskRequest.Task is empty: give at least its \"type\"")
	// ErrZeroTaskID is returned by GetTaskResult for the zero TaskID.
	ErrZeroTaskID = errors.New("anysolver: getTaskResult: the task id is empty: pass the id createTask returned")
)

// APIError is an AnySolver answer that reports an error: errorId other than
// 0, or status "failed" on getTaskResult (whatever errorId said then).
//
// ErrorCode and ErrorDescription are the server's text, whole, with the API key, if echoed,
// redacted in any case and escaping; whoever stores them redacts its own secrets first and bounds
// them after (Error shows them bounded). Decide on ErrorCode, never on the description, which
// varies by provider.
// HTTPStatus is the HTTP status the answer came with (200 for most answers).
// TaskFailed is true when the answer was status "failed": the remote task is over, whatever
// the code's errorId suggests about retrying the call.
type APIError struct {
	Call             classify.Call
	ErrorID          int
	ErrorCode        string
	ErrorDescription string
	HTTPStatus       int
	TaskFailed       bool
}

// Error reads like "anysolver: createTask: ERROR_ZERO_BALANCE (errorId 1): Insufficient account balance".
func (e *APIError) Error() string {
	code := truncate(codeOrUnknown(e.ErrorCode), maxCodeBytes)
	msg := fmt.Sprintf("anysolver: %s: %s (errorId %d)", e.Call, code, e.ErrorID)
	if e.TaskFailed {
		msg = fmt.Sprintf("anysolver: %s: task failed: %s (errorId %d)", e.Call, code, e.ErrorID)
	}
	if e.ErrorDescription != "" {
		msg += ": " + truncate(e.ErrorDescription, maxDescriptionBytes)
	}
	if e.HTTPStatus != 0 && (e.HTTPStatus < 200 || e.HTTPStatus > 299) {
		msg += fmt.Sprintf(" (HTTP %d)", e.HTTPStatus)
	}
	return msg
}

func codeOrUnknown(code string) string {
	if code == "" {
		return "no errorCode"
	}
	return code
}

// TransportError means no usable AnySolver answer came back: a timeout, a
// refused or reset connection, a non-2xx status without a JSON error, a body
// that is not the JSON object the call expects, or a body over MaxBodyBytes.
//
// HTTPStatus is 0 when no response arrived. Err, when set, is the underlying
// cause (a *url.Error names the URL, never the request body or the key).
type TransportError struct {
	Call       classify.Call
	Failure    classify.Failure
	HTTPStatus int
	Err        error
}

// Error reads like "anysolver: getTaskResult: timeout: context deadline exceeded".
func (e *TransportError) Error() string {
	msg := fmt.Sprintf("anysolver: %s: %s", e.Call, e.Failure)
	if e.HTTPStatus != 0 {
		msg += fmt.Sprintf(" (HTTP %d)", e.HTTPStatus)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying cause, so errors.Is(err, context.DeadlineExceeded)
// holds for a call that ran out of its Timeout.
func (e *TransportError) Unwrap() error { return e.Err }

// AsClassifyError turns an error from this client into the classifier's input.
// It returns ok=false for errors that did not come from AnySolver or the
// network: the caller's own context ending (shutdown), ErrEmptyTask,
// ErrZeroTaskID, or a task that cannot be encoded as JSON.
func AsClassifyError(err error) (classify.Error, bool) {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return classify.Error{
			Call:             apiErr.Call,
			ErrorID:          apiErr.ErrorID,
			ErrorCode:        apiErr.ErrorCode,
			ErrorDescription: apiErr.ErrorDescription,
			HTTPStatus:       apiErr.HTTPStatus,
		}, true
	}
	var tErr *TransportError
	if errors.As(err, &tErr) {
		return classify.Error{
			Call:       tErr.Call,
			Failure:    tErr.Failure,
			HTTPStatus: tErr.HTTPStatus,
		}, true
	}
	return classify.Error{}, false
}
