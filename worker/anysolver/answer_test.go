package anysolver

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

func TestParseAnswer(t *testing.T) {
	t.Parallel()
	const (
		create = classify.CallCreateTask
		poll   = classify.CallGetTaskResult
		bal    = classify.CallGetBalance
	)
	num := func(s string) TaskID { return TaskID{text: s, numeric: true} }
	str := func(s string) TaskID { return TaskID{text: s} }
	tests := []struct {
		name    string
		call    classify.Call
		status  int
		body    string
		want    answer
		apiErr  *APIError        // when an APIError is wanted
		failure classify.Failure // when a TransportError is wanted
	}{
		{"create numeric id", create, 200, `{"errorId":0,"taskId":123}`, answer{TaskID: num("123")}, nil, ""},
		{"create string id", create, 200, ` {"errorId":0,"taskId":"ab-1"}`, answer{TaskID: str("ab-1")}, nil, ""},
		{"create big numeric id kept exact", create, 200, `{"errorId":0,"taskId":12345678901234567890}`, answer{TaskID: num("12345678901234567890")}, nil, ""},
		{"create no errorId", create, 200, `{"taskId":"x"}`, answer{TaskID: str("x")}, nil, ""},
		{"create ready", create, 200, `{"errorId":0,"status":"ready","solution":{"text":"abc"},"cost":"0.0005"}`,
			answer{Status: StatusReady, Solution: []byte(`{"text":"abc"}`), Cost: 0.0005}, nil, ""},
		{"create no taskId", create, 200, `{"errorId":0}`, answer{}, nil, classify.FailureBadBody},
		{"create null taskId", create, 200, `{"errorId":0,"taskId":null}`, answer{}, nil, classify.FailureBadBody},
		{"create empty taskId", create, 200, `{"errorId":0,"taskId":""}`, answer{}, nil, classify.FailureBadBody},
		{"create object taskId", create, 200, `{"errorId":0,"taskId":{}}`, answer{}, nil, classify.FailureBadBody},
		{"create odd status", create, 200, `{"errorId":0,"taskId":1,"status":"weird"}`, answer{}, nil, classify.FailureBadBody},
		{"ready without solution", create, 200, `{"errorId":0,"status":"ready","taskId":1}`, answer{}, nil, classify.FailureBadBody},
		{"ready with string solution", poll, 200, `{"errorId":0,"status":"ready","solution":"tok"}`, answer{}, nil, classify.FailureBadBody},
		{"poll processing", poll, 200, `{"errorId":0,"status":"processing"}`, answer{Status: StatusProcessing}, nil, ""},
		{"poll idle", poll, 200, `{"errorId":0,"status":"idle"}`, answer{Status: StatusIdle}, nil, ""},
		{"poll ready", poll, 200, `{"errorId":0,"status":"ready","solution":{"token":"t"},"cost":0.002,"createTime":1700000000,"endTime":1700000007}`,
			answer{Status: StatusReady, Solution: []byte(`{"token":"t"}`), Cost: 0.002, CreateTime: 1700000000, EndTime: 1700000007}, nil, ""},
		{"poll ready odd cost ignored", poll, 200, `{"errorId":0,"status":"ready","solution":{},"cost":"n/a","createTime":"x"}`,
			answer{Status: StatusReady, Solution: []byte(`{}`)}, nil, ""},
		{"poll no status", poll, 200, `{"errorId":0}`, answer{}, nil, classify.FailureBadBody},
		{"poll status not string", poll, 200, `{"errorId":0,"status":1}`, answer{}, nil, classify.FailureBadBody},
		{"poll failed errorId 0", poll, 200, `{"errorId":0,"status":"failed","errorCode":"CAPTCHA_UNSOLVABLE","errorDescription":"no"}`, answer{},
			&APIError{Call: poll, ErrorID: 1, ErrorCode: "CAPTCHA_UNSOLVABLE", ErrorDescription: "no", HTTPStatus: 200, TaskFailed: true}, ""},
		{"poll failed errorId 2 kept", poll, 200, `{"errorId":2,"status":"failed","errorCode":"INTERNAL_ERROR"}`, answer{},
			&APIError{Call: poll, ErrorID: 2, ErrorCode: "INTERNAL_ERROR", HTTPStatus: 200, TaskFailed: true}, ""},
		{"poll failed seed id 2", poll, 200, `{"status":"failed","errorCode":"PROVIDER_UNREACHABLE"}`, answer{},
			&APIError{Call: poll, ErrorID: 2, ErrorCode: "PROVIDER_UNREACHABLE", HTTPStatus: 200, TaskFailed: true}, ""},
		{"error answer", create, 200, `{"errorId":1,"errorCode":"ERROR_ZERO_BALANCE","errorDescription":"top up"}`, answer{},
			&APIError{Call: create, ErrorID: 1, ErrorCode: "ERROR_ZERO_BALANCE", ErrorDescription: "top up", HTTPStatus: 200}, ""},
		{"error id as string", create, 200, `{"errorId":"2","errorCode":"X"}`, answer{},
			&APIError{Call: create, ErrorID: 2, ErrorCode: "X", HTTPStatus: 200}, ""},
		{"code without errorId", create, 200, `{"errorCode":"RATE_LIMITED"}`, answer{},
			&APIError{Call: create, ErrorID: 1, ErrorCode: "RATE_LIMITED", HTTPStatus: 200}, ""},
		{"error without code", create, 200, `{"errorId":1}`, answer{}, &APIError{Call: create, ErrorID: 1, HTTPStatus: 200}, ""},
		{"error description not string", create, 200, `{"errorId":1,"errorCode":"X","errorDescription":{"a":1}}`, answer{},
			&APIError{Call: create, ErrorID: 1, ErrorCode: "X", HTTPStatus: 200}, ""},
		{"errorId fractional", create, 200, `{"errorId":1.5}`, answer{}, nil, classify.FailureBadBody},
		{"errorId object", create, 200, `{"errorId":{}}`, answer{}, nil, classify.FailureBadBody},
		{"errorCode number", create, 200, `{"errorId":1,"errorCode":7}`, answer{}, nil, classify.FailureBadBody},
		{"http 500 with JSON error", poll, 500, `{"errorId":2,"errorCode":"INTERNAL_ERROR"}`, answer{},
			&APIError{Call: poll, ErrorID: 2, ErrorCode: "INTERNAL_ERROR", HTTPStatus: 500}, ""},
		{"http 502 html", poll, 502, `<html>502</html>`, answer{}, nil, classify.FailureHTTPStatus},
		{"http 503 JSON without error", poll, 503, `{"errorId":0,"status":"ready","solution":{}}`, answer{}, nil, classify.FailureHTTPStatus},
		{"http 429 empty", create, 429, ``, answer{}, nil, classify.FailureHTTPStatus},
		{"html 200", create, 200, `<!doctype html>`, answer{}, nil, classify.FailureBadBody},
		{"empty body", create, 200, ``, answer{}, nil, classify.FailureBadBody},
		{"null", create, 200, `null`, answer{}, nil, classify.FailureBadBody},
		{"array", create, 200, `[{"errorId":0,"taskId":1}]`, answer{}, nil, classify.FailureBadBody},
		{"string", create, 200, `"ok"`, answer{}, nil, classify.FailureBadBody},
		{"truncated", create, 200, `{"errorId":0,"taskId":"7f3`, answer{}, nil, classify.FailureBadBody},
		{"trailing garbage", create, 200, `{"errorId":0,"taskId":1} x`, answer{}, nil, classify.FailureBadBody},
		{"balance number", bal, 200, `{"errorId":0,"balance":12.34}`, answer{Balance: 12.34}, nil, ""},
		{"balance string", bal, 200, `{"errorId":0,"balance":"7.5"}`, answer{Balance: 7.5}, nil, ""},
		{"balance missing", bal, 200, `{"errorId":0}`, answer{}, nil, classify.FailureBadBody},
		{"balance NaN", bal, 200, `{"errorId":0,"balance":"NaN"}`, answer{}, nil, classify.FailureBadBody},
		{"balance not supported", bal, 200, `{"errorId":1,"errorCode":"PROVIDER_BALANCE_NOT_SUPPORTED"}`, answer{},
			&APIError{Call: bal, ErrorID: 1, ErrorCode: "PROVIDER_BALANCE_NOT_SUPPORTED", HTTPStatus: 200}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseAnswer([]byte(tt.body), tt.call, tt.status, nil)
			switch {
			case tt.apiErr != nil:
				var ae *APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, tt.apiErr, ae)
			case tt.failure != "":
				var te *TransportError
				require.ErrorAs(t, err, &te, "got %v", err)
				require.Equal(t, tt.failure, te.Failure, "got %v", err)
				require.Equal(t, tt.status, te.HTTPStatus)
				require.Equal(t, tt.call, te.Call)
			default:
				require.NoError(t, err)
				if tt.want.Solution != nil {
					require.JSONEq(t, string(tt.want.Solution), string(got.Solution))
					got.Solution, tt.want.Solution = nil, nil
				}
				require.Equal(t, tt.want, got)
			}
		})
	}
}

func TestAPIErrorTextIsBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", 4000)
	_, err := parseAnswer([]byte(`{"errorId":1,"errorCode":"`+strings.Repeat("A", 1000)+`","errorDescription":"`+long+`"}`), classify.CallCreateTask, 200, nil)
	var ae *APIError
	require.True(t, errors.As(err, &ae))
	require.Equal(t, long, ae.ErrorDescription, "kept whole, for the caller to redact before it cuts")
	msg := err.Error()
	require.LessOrEqual(t, len(msg), maxDescriptionBytes+maxCodeBytes+100)
	require.True(t, strings.HasSuffix(msg, "é…"), "cut on a rune boundary")
}
