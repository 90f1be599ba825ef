package gateway_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

func TestResultAnswer(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ended := created.Add(42 * time.Second)
	tests := []struct {
		name string
		out  enqueue.Outcome
		want string
	}{
		{"pending", enqueue.Outcome{State: enqueue.StatePending}, `{"errorId":0,"status":"processing"}`},
		{"scheduled", enqueue.Outcome{State: enqueue.StateScheduled}, `{"errorId":0,"status":"processing"}`},
		{"active", enqueue.Outcome{State: enqueue.StateActive}, `{"errorId":0,"status":"processing"}`},
		{"retrying, with the last error kept to itself", enqueue.Outcome{State: enqueue.StateRetrying,
			Error: &enqueue.ErrorInfo{ErrorID: 2, ErrorCode: "INTERNAL_ERROR"}}, `{"errorId":0,"status":"processing"}`},
		{"solved", enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"gRecaptchaResponse":"03AG","token":"03AG"}`),
			Cost: 0.001, Attempts: 3, SubmittedAt: created, FinishedAt: ended},
			`{"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"03AG","token":"03AG"},"cost":"0.0010",` +
				`"createTime":1772366400,"endTime":1772366442,"solveCount":3}`},
		{"solved token", enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"token":"0.x"}`),
			Cost: 0.001, Attempts: 1, FinishedAt: ended, ExpiresAt: ended.Add(300 * time.Second)},
			`{"errorId":0,"status":"ready","solution":{"token":"0.x"},"cost":"0.0010","endTime":1772366442,"solveCount":1,"expiresAt":1772366742}`},
		{"solved at a fine cost", enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"text":"abc"}`),
			Cost: 0.00025, Attempts: 1}, `{"errorId":0,"status":"ready","solution":{"text":"abc"},"cost":"0.00025","solveCount":1}`},
		{"solved without a solution object", enqueue.Outcome{State: enqueue.StateSolved, Attempts: 1},
			`{"errorId":0,"status":"ready","solution":{},"cost":"0.0000","solveCount":1}`},
		{"failed keeps AnySolver's errorId and code", enqueue.Outcome{State: enqueue.StateFailed,
			Error: &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "DOMAIN_BANNED", ErrorDescription: "This domain is not allowed."}},
			`{"errorId":1,"errorCode":"DOMAIN_BANNED","errorDescription":"This domain is not allowed.","status":"failed"}`},
		{"dead keeps errorId 2", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorID: 2, ErrorCode: "INTERNAL_ERROR", ErrorDescription: "retries spent"}},
			`{"errorId":2,"errorCode":"INTERNAL_ERROR","errorDescription":"retries spent","status":"failed"}`},
		{"our own code gets errorId 1", enqueue.Outcome{State: enqueue.StateFailed,
			Error: &enqueue.ErrorInfo{ErrorCode: "JOB_EXPIRED", ErrorDescription: "the job's deadline passed before any attempt"}},
			`{"errorId":1,"errorCode":"JOB_EXPIRED","errorDescription":"the job's deadline passed before any attempt","status":"failed"}`},
		{"an unknown errorId becomes 1", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorID: 7, ErrorCode: "ODD", ErrorDescription: "odd"}},
			`{"errorId":1,"errorCode":"ODD","errorDescription":"odd","status":"failed"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(gateway.ResultAnswer(tt.out))
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
		})
	}
}

// TestDialectResultAnswer: getTaskResult answers an outcome's code in the anti-captcha dialect
// where there is one, with the outcome's own code kept in the description; the operator's
// AnySolver account errors never read as the client's own key or balance.
func TestDialectResultAnswer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		out  enqueue.Outcome
		want string
	}{
		{"a code with an equivalent", enqueue.Outcome{State: enqueue.StateFailed,
			Error: &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "DOMAIN_BANNED", ErrorDescription: "This domain is not allowed."}},
			`{"errorId":1,"errorCode":"ERROR_DOMAIN_NOT_ALLOWED","errorDescription":"DOMAIN_BANNED: This domain is not allowed.","status":"failed"}`},
		{"the operator's AnySolver key is never the client's", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "ERROR_KEY_DOES_NOT_EXIST", ErrorDescription: "Invalid or missing API key."}},
			`{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE","errorDescription":"ERROR_KEY_DOES_NOT_EXIST: Invalid or missing API key.","status":"failed"}`},
		{"nor the operator's AnySolver balance", enqueue.Outcome{State: enqueue.StateFailed,
			Error: &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "ERROR_ZERO_BALANCE", ErrorDescription: "Insufficient account balance."}},
			`{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE","errorDescription":"ERROR_ZERO_BALANCE: Insufficient account balance.","status":"failed"}`},
		{"nor the operator's banned account", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorID: 1, ErrorCode: "ERROR_USER_BANNED", ErrorDescription: "Account suspended."}},
			`{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE","errorDescription":"ERROR_USER_BANNED: Account suspended.","status":"failed"}`},
		{"a spent budget of the key's own queue is its balance", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorCode: "BUDGET_SPENT", ErrorDescription: "held past the deadline"}},
			`{"errorId":1,"errorCode":"ERROR_ZERO_BALANCE","errorDescription":"BUDGET_SPENT: held past the deadline","status":"failed"}`},
		{"our own code", enqueue.Outcome{State: enqueue.StateFailed,
			Error: &enqueue.ErrorInfo{ErrorCode: "JOB_EXPIRED", ErrorDescription: "the job's deadline passed before any attempt"}},
			`{"errorId":1,"errorCode":"ERROR_CAPTCHA_UNSOLVABLE","errorDescription":"JOB_EXPIRED: the job's deadline passed before any attempt","status":"failed"}`},
		{"a code without an equivalent is kept", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorID: 2, ErrorCode: "INTERNAL_ERROR", ErrorDescription: "retries spent"}},
			`{"errorId":2,"errorCode":"INTERNAL_ERROR","errorDescription":"retries spent","status":"failed"}`},
		{"an unknown code is kept", enqueue.Outcome{State: enqueue.StateDead,
			Error: &enqueue.ErrorInfo{ErrorID: 7, ErrorCode: "ODD", ErrorDescription: "odd"}},
			`{"errorId":1,"errorCode":"ODD","errorDescription":"odd","status":"failed"}`},
		{"a solution is untouched", enqueue.Outcome{State: enqueue.StateSolved, Solution: json.RawMessage(`{"text":"abc"}`), Attempts: 1},
			`{"errorId":0,"status":"ready","solution":{"text":"abc"},"cost":"0.0000","solveCount":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := json.Marshal(gateway.DialectResultAnswer(tt.out))
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(got))
		})
	}
}
