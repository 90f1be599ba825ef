package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// The methods the gateway serves, each at POST /{method}.
const (
	MethodCreateTask                  = "createTask"
	MethodGetTaskResult               = "getTaskResult"
	MethodGetBalance                  = "getBalance"
	MethodReportIncorrectRecaptcha    = "reportIncorrectRecaptcha"
	MethodReportCorrectRecaptcha      = "reportCorrectRecaptcha"
	MethodReportIncorrectImageCaptcha = "reportIncorrectImageCaptcha"
)

// Methods lists every method the gateway serves.
var Methods = []string{MethodCreateTask, MethodGetTaskResult, MethodGetBalance,
	MethodReportIncorrectRecaptcha, MethodReportCorrectRecaptcha, MethodReportIncorrectImageCaptcha}

// Error codes the gateway answers. All but ERROR_NO_SLOT_AVAILABLE (the anti-captcha and
// 2captcha code every client handles as "no room now, try later") and the last five are
// AnySolver's own (the seed table).
const (
	CodeKeyDoesNotExist  = "ERROR_KEY_DOES_NOT_EXIST"
	CodeZeroBalance      = "ERROR_ZERO_BALANCE" // also a spent budget: every client handles it
	CodeInvalidTaskData  = "INVALID_TASK_DATA"
	CodeInvalidWebsite   = "INVALID_WEBSITEURL"
	CodeInvalidSitekey   = "INVALID_SITEKEY"
	CodeImageCorrupted   = "IMAGE_CORRUPTED"
	CodeImageTooLarge    = "IMAGE_TOO_LARGE"
	CodeTaskNotFound     = "TASK_NOT_FOUND"
	CodeRateLimited      = "RATE_LIMITED"
	CodeNoSlotAvailable  = "ERROR_NO_SLOT_AVAILABLE" // a key at one of its quotas (jobs in flight, waiting, image bytes)
	CodeInternalError    = "INTERNAL_ERROR"
	CodeNoSuchMethod     = "ERROR_NO_SUCH_METHOD" // the createTask family's name for an unknown method
	CodeMethodNotAllowed = "ERROR_METHOD_NOT_ALLOWED"
	// CodeCrossOrigin refuses a request a web page made (Sec-Fetch-Site or Origin says so).
	CodeCrossOrigin = "ERROR_CROSS_ORIGIN_REQUEST"
	// CodeHostNotAllowed refuses a request to a gateway without keys under a Host that is not
	// loopback (DNS rebinding).
	CodeHostNotAllowed = "ERROR_HOST_NOT_ALLOWED"
	// CodeTooManyWrongKeys refuses, unchecked, the key of an address that sent too many wrong ones.
	CodeTooManyWrongKeys = "ERROR_TOO_MANY_WRONG_KEYS"
)

// MaxTaskID bounds the taskIds the gateway answers: JSON numbers below 2^53 survive every
// client's float64 parsing exactly.
const MaxTaskID = 1<<53 - 1

// Status values of getTaskResult and the report methods.
const (
	StatusProcessing = "processing"
	StatusReady      = "ready"
	StatusFailed     = "failed"
	StatusSuccess    = "success"
)

// Answer is one protocol answer, every method's in one shape: fields a method does not give
// are left out. It is also the body of a job's callback, with TaskID and JobID set.
type Answer struct {
	ErrorID          int             `json:"errorId"`
	ErrorCode        string          `json:"errorCode,omitempty"`
	ErrorDescription string          `json:"errorDescription,omitempty"`
	TaskID           int64           `json:"taskId,omitempty"`
	JobID            string          `json:"id,omitempty"`
	Status           string          `json:"status,omitempty"`
	Solution         json.RawMessage `json:"solution,omitempty"`
	Cost             string          `json:"cost,omitempty"`
	CreateTime       int64           `json:"createTime,omitempty"`
	EndTime          int64           `json:"endTime,omitempty"`
	SolveCount       int             `json:"solveCount,omitempty"`
	// ExpiresAt is when a solved token stops being accepted by the site, in Unix seconds (as
	// createTime and endTime); left out for a solution that is not a token.
	ExpiresAt int64    `json:"expiresAt,omitempty"`
	Balance   *float64 `json:"balance,omitempty"`
}

// apiError is an error answer: errorId, code and a description that names the field at fault.
type apiError struct {
	id          int
	code        string
	description string
}

func (e *apiError) Error() string { return e.code + ": " + e.description }

// answer is the createTask protocol's answer: the code in the anti-captcha dialect where
// CodeTable has one, the gateway's own code kept at the start of the description.
func (e *apiError) answer() Answer {
	code, desc := gatewayRow(e.code).dialect(e.description)
	return Answer{ErrorID: e.id, ErrorCode: code, ErrorDescription: desc}
}

func badRequest(code, format string, args ...any) *apiError {
	return &apiError{id: 1, code: code, description: fmt.Sprintf(format, args...)}
}

// envelope is a decoded request body: its top-level fields, each still raw. Unknown ones
// (softId, languagePool, nocache...) are simply never read.
type envelope map[string]json.RawMessage

// decodeEnvelope reads a request body: one JSON object and nothing after it.
func decodeEnvelope(body []byte) (envelope, *apiError) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, badRequest(CodeInvalidTaskData, "the request body %s", describeJSONError(body, err))
	}
	if env == nil {
		return nil, badRequest(CodeInvalidTaskData, "the request body must be a JSON object, got null")
	}
	return env, nil
}

func describeJSONError(body []byte, err error) string {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax) && strings.Contains(syntax.Error(), "after top-level value"):
		return "has data after the JSON object"
	case errors.As(err, &syntax) && syntax.Offset >= int64(len(bytes.TrimRight(body, " \t\r\n"))):
		if len(bytes.TrimSpace(body)) == 0 {
			return "is empty: send a JSON object"
		}
		return "is truncated JSON"
	case errors.As(err, &syntax):
		return fmt.Sprintf("is not valid JSON at byte %d", syntax.Offset)
	case errors.As(err, &typeErr):
		return fmt.Sprintf("must be a JSON object, got JSON %s", typeErr.Value)
	default:
		return "is not a JSON object"
	}
}

// has reports whether field is present and not null.
func (e envelope) has(field string) bool {
	raw, ok := e[field]
	return ok && !bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// clientKey returns the clientKey; anything but a non-empty string is no key at all.
func (e envelope) clientKey() (string, *apiError) {
	var key string
	if !e.has("clientKey") || json.Unmarshal(e["clientKey"], &key) != nil || key == "" {
		return "", &apiError{id: 1, code: CodeKeyDoesNotExist, description: "clientKey is missing or not a gateway key"}
	}
	return key, nil
}

// str reads an optional string field.
func (e envelope) str(field string) (string, *apiError) {
	if !e.has(field) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(e[field], &s); err != nil {
		return "", badRequest(CodeInvalidTaskData, "%s must be a string, got JSON %s", field, kindOf(e[field]))
	}
	return s, nil
}

// object reads an optional object field, numbers kept as their exact text.
func (e envelope) object(field string) (map[string]any, *apiError) {
	if !e.has(field) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(e[field]))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, badRequest(CodeInvalidTaskData, "%s must be an object, got JSON %s", field, kindOf(e[field]))
	}
	return m, nil
}

// taskID reads taskId: a positive integer (a JSON number, or a string of digits as some
// clients send it). ok is false for a well-formed value that cannot be one of our taskIds,
// which is simply not found.
func (e envelope) taskID() (id int64, ok bool, err *apiError) {
	if !e.has("taskId") {
		return 0, false, badRequest(CodeInvalidTaskData, "taskId is required: the number createTask answered")
	}
	raw := bytes.TrimSpace(e["taskId"])
	var text string
	switch raw[0] {
	case '"':
		if json.Unmarshal(raw, &text) != nil {
			return 0, false, badRequest(CodeInvalidTaskData, "taskId must be a number")
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		text = string(raw)
	default:
		return 0, false, badRequest(CodeInvalidTaskData, "taskId must be a number, got JSON %s", kindOf(raw))
	}
	n, perr := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
	if perr != nil || n <= 0 || n > MaxTaskID {
		return 0, false, nil
	}
	return n, true, nil
}

// kindOf names the JSON kind of a raw value, for error descriptions that must not echo it.
func kindOf(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return "nothing"
	}
	switch raw[0] {
	case '{':
		return "an object"
	case '[':
		return "a list"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}
