package callback

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// TestCallbackBodySpeaksTheGatewaysDialect: a job that came through the gateway is called back
// as the gateway answers its getTaskResult (the anti-captcha dialect, the outcome's own code
// starting errorDescription, the operator's account errors never as the client's); a job of any
// other producer gets the outcome's own code.
func TestCallbackBodySpeaksTheGatewaysDialect(t *testing.T) {
	t.Parallel()
	ended := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	failed := func(id int, code, desc string) jobwire.Record {
		return jobwire.Record{State: enqueue.StateFailed, Attempts: 1, FinishedAt: ended,
			Error: &enqueue.ErrorInfo{ErrorID: id, ErrorCode: code, ErrorDescription: desc}}
	}
	tests := []struct {
		name   string
		taskID int64 // the gateway's taskId; 0: not a gateway job
		rec    jobwire.Record
		want   string
	}{
		{name: "gateway job, a code with a dialect name", taskID: 77, rec: failed(1, "DOMAIN_BANNED", "This domain is not allowed."),
			want: `{"errorId":1,"errorCode":"ERROR_DOMAIN_NOT_ALLOWED","errorDescription":"DOMAIN_BANNED: This domain is not allowed.","status":"failed","taskId":77,"id":"job-1","outcomeSeq":1}`},
		{name: "gateway job, the operator's account", taskID: 77, rec: failed(1, "ERROR_ZERO_BALANCE", "Account has zero balance"),
			want: `{"errorId":1,"errorCode":"ERROR_NO_SLOT_AVAILABLE","errorDescription":"ERROR_ZERO_BALANCE: Account has zero balance","status":"failed","taskId":77,"id":"job-1","outcomeSeq":1}`},
		{name: "gateway job, a code the dialect lacks", taskID: 77, rec: failed(1, "UNKNOWN_PROVIDER_ERROR", "boom"),
			want: `{"errorId":1,"errorCode":"UNKNOWN_PROVIDER_ERROR","errorDescription":"boom","status":"failed","taskId":77,"id":"job-1","outcomeSeq":1}`},
		{name: "gateway job, expired", taskID: 77, rec: failed(0, "JOB_EXPIRED", "the job's deadline passed before any attempt"),
			want: `{"errorId":1,"errorCode":"ERROR_CAPTCHA_UNSOLVABLE","errorDescription":"JOB_EXPIRED: the job's deadline passed before any attempt","status":"failed","taskId":77,"id":"job-1","outcomeSeq":1}`},
		{name: "a producer's job keeps the outcome's own code", rec: failed(1, "DOMAIN_BANNED", "This domain is not allowed."),
			want: `{"errorId":1,"errorCode":"DOMAIN_BANNED","errorDescription":"This domain is not allowed.","status":"failed","id":"job-1","outcomeSeq":1}`},
		{name: "a producer's job, the account", rec: failed(1, "ERROR_ZERO_BALANCE", "Account has zero balance"),
			want: `{"errorId":1,"errorCode":"ERROR_ZERO_BALANCE","errorDescription":"Account has zero balance","status":"failed","id":"job-1","outcomeSeq":1}`},
		{name: "gateway job, solved", taskID: 77,
			rec:  jobwire.Record{State: enqueue.StateSolved, Attempts: 1, Cost: 0.002, FinishedAt: ended, Solution: json.RawMessage(`{"token":"t"}`)},
			want: `{"errorId":0,"status":"ready","solution":{"token":"t"},"cost":"0.0020","endTime":` + "1777636800" + `,"solveCount":1,"taskId":77,"id":"job-1","outcomeSeq":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := jobwire.Payload{V: jobwire.PayloadVersion, GatewayTaskID: tt.taskID, CallbackURL: "https://hooks.example/cb"}
			if tt.taskID != 0 {
				p.KeyName = "alpha"
			}
			body, err := callbackBody("job-1", p, tt.rec)
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(body))
		})
	}
}

// TestSignAndKeySecret pins the signing scheme to values computed outside Go (Python's hmac), as
// a receiver computes them: "v1=" and HMAC-SHA256(secret, timestamp "." deliveryID "." body), and
// a key's derived secret HMAC-SHA256(shared, "solvequeue key callback " + name) in hex.
func TestSignAndKeySecret(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		got  string
		want string
	}{
		{name: "signature", got: Sign([]byte("whsec-test"), 1767225600, "d-1", []byte(`{"id":"job-1"}`)),
			want: "v1=dec73e396f570faae838603353428804a78aa30901cdd2ceacbeddb011786d48"},
		{name: "a key's derived secret", got: KeySecret("shared-secret", "alpha"),
			want: "6f32bd756795952dcadcb3b18a16b13642e1c0eb2f8874fcc86a476b6c4b82df"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, tt.got)
		})
	}
}

// TestSecretFor: a job of no gateway key is signed with the shared secret; a key's job with the
// key's own secret, or else the one derived from the shared secret; with no secret at all, a
// key's job goes unsigned rather than signed with a secret anyone could derive.
func TestSecretFor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		shared  string
		keyName string
		want    string
	}{
		{name: "no key", shared: "s-shared", keyName: "", want: "s-shared"},
		{name: "a key with its own", shared: "s-shared", keyName: "alpha", want: "alpha-own-secret-1234"},
		{name: "a key without", shared: "s-shared", keyName: "beta", want: KeySecret("s-shared", "beta")},
		{name: "a key with its own, no shared", keyName: "alpha", want: "alpha-own-secret-1234"},
		{name: "a key without, no shared", keyName: "beta", want: ""},
		{name: "no key, no shared", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &Callbacks{secret: []byte(tt.shared), keySecrets: map[string]string{"alpha": "alpha-own-secret-1234"}}
			require.Equal(t, tt.want, string(c.secretFor(tt.keyName)))
		})
	}
}

// TestDeliveryID: the same outcome of the same job has the same delivery ID however often it is
// scheduled; another outcome, another job, or the same job ID used again later, another.
func TestDeliveryID(t *testing.T) {
	t.Parallel()
	ended := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	id := deliveryID("job-1", 1, ended)
	require.Equal(t, id, deliveryID("job-1", 1, ended.In(time.FixedZone("x", 3600))), "the clock's zone is no part of it")
	for _, other := range []string{deliveryID("job-1", 2, ended), deliveryID("job-2", 1, ended),
		deliveryID("job-1", 1, ended.Add(time.Nanosecond)), deliveryID("job-11", 1, ended)} {
		require.NotEqual(t, id, other)
	}
}
