package anysolver

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/solvequeue/solvequeue/classify"
)

// FuzzParseAnswer checks that any body, call and status give either a consistent answer or an
// *APIError or *TransportError the classifier accepts, never a panic. Its seed corpus is in
// testdata/fuzz/FuzzParseAnswer.
func FuzzParseAnswer(f *testing.F) {
	f.Fuzz(func(t *testing.T, body []byte, callN uint8, status int) {
		calls := []classify.Call{classify.CallCreateTask, classify.CallGetTaskResult, classify.CallGetBalance}
		call := calls[int(callN)%len(calls)]
		a, err := parseAnswer(body, call, status, nil)
		if err != nil {
			var ae *APIError
			var te *TransportError
			switch {
			case errors.As(err, &ae):
				if ae.ErrorID == 0 {
					t.Fatalf("APIError with errorId 0: %v", err)
				}
				// The code and description are kept whole (parseAnswer: whoever stores them redacts
				// first and cuts after); the error's text, which logs show, is what is bounded.
				if n := len(ae.Error()); n > maxCodeBytes+maxDescriptionBytes+128 {
					t.Fatalf("unbounded text: %d bytes for a %d-byte code and a %d-byte description",
						n, len(ae.ErrorCode), len(ae.ErrorDescription))
				}
			case errors.As(err, &te):
				if te.Failure != classify.FailureBadBody && te.Failure != classify.FailureHTTPStatus {
					t.Fatalf("unexpected failure %q", te.Failure)
				}
			default:
				t.Fatalf("error of type %T: %v", err, err)
			}
			if ce, ok := AsClassifyError(err); !ok || ce.Call != call {
				t.Fatalf("AsClassifyError(%v) = %+v, %v", err, ce, ok)
			}
			_ = err.Error()
			return
		}
		if status < 200 || status > 299 {
			t.Fatalf("answer accepted with HTTP %d", status)
		}
		if a.Status == StatusReady && (!json.Valid(a.Solution) || a.Solution[0] != '{') {
			t.Fatalf("ready without a solution object: %q", a.Solution)
		}
		switch call {
		case classify.CallCreateTask:
			if a.Status != StatusReady && a.TaskID.IsZero() {
				t.Fatal("createTask accepted without taskId")
			}
		case classify.CallGetTaskResult:
			if a.Status != StatusReady && a.Status != StatusProcessing && a.Status != StatusIdle {
				t.Fatalf("getTaskResult accepted with status %q", a.Status)
			}
		}
		if !a.TaskID.IsZero() {
			b, err := a.TaskID.MarshalJSON()
			if err != nil || !json.Valid(b) {
				t.Fatalf("task id %q does not marshal: %v", a.TaskID, err)
			}
			back, err := ParseTaskID(b)
			if err != nil || back != a.TaskID {
				t.Fatalf("task id %q does not round-trip: %v", a.TaskID, err)
			}
		}
	})
}
