package enqueue_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/redact"
)

func TestParseJob(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		line      string
		wantField string // "" means the line parses
		wantText  string
		check     func(t *testing.T, job enqueue.Job)
	}{
		{name: "full job line",
			line: `{"id":"order-42","queue":"critical","provider":"CapSolver","settings":{"a":1},"deadline":"10m","maxRetries":3,` +
				`"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"k"}}`,
			check: func(t *testing.T, job enqueue.Job) {
				require.Equal(t, "order-42", job.ID)
				require.Equal(t, "critical", job.Queue)
				require.Equal(t, "CapSolver", job.Provider)
				require.Equal(t, map[string]any{"a": json.Number("1")}, job.Settings)
				require.Equal(t, "10m", job.Deadline)
				require.NotNil(t, job.MaxRetries)
				require.Equal(t, 3, *job.MaxRetries)
				require.Equal(t, "RecaptchaV2TaskProxyless", job.Task["type"])
			}},
		{name: "task only", line: `{"task":{"type":"X"}}`, check: func(t *testing.T, job enqueue.Job) {
			require.Empty(t, job.ID)
			require.Nil(t, job.MaxRetries, "an absent maxRetries is nil, not 0")
		}},
		{name: "surrounding white space", line: "  {\"task\":{\"type\":\"X\"}}  \n", check: func(t *testing.T, job enqueue.Job) {
			require.Equal(t, "X", job.Task["type"])
		}},
		{name: "numbers inside the task keep their exact text",
			line: `{"task":{"type":"X","proxyPort":8080,"big":12345678901234567890,"f":0.1000,"nested":{"n":1e3}}}`,
			check: func(t *testing.T, job enqueue.Job) {
				require.Equal(t, json.Number("8080"), job.Task["proxyPort"])
				require.Equal(t, json.Number("12345678901234567890"), job.Task["big"])
				require.Equal(t, json.Number("0.1000"), job.Task["f"])
				require.Equal(t, json.Number("1e3"), job.Task["nested"].(map[string]any)["n"])
			}},
		{name: "no task parses (Validate refuses it)", line: `{"id":"a"}`, check: func(t *testing.T, job enqueue.Job) {
			require.Nil(t, job.Task)
			require.Error(t, job.Validate())
		}},
		{name: "unknown top-level field is named", line: `{"task":{"type":"X"},"websiteURL":"https://a.example"}`,
			wantField: "websiteURL", wantText: "is not a job field"},
		{name: "misspelt field is named", line: `{"tsak":{"type":"X"}}`, wantField: "tsak"},
		{name: "the empty key is named visibly", line: `{"":1,"task":{"type":"X"}}`, wantField: `""`},
		{name: "a key with a quote is named", line: `{"a\"b":1,"task":{"type":"X"}}`, wantField: `a"b`},
		{name: "truncated JSON", line: `{"task":{"type":"X"`, wantField: "(line)", wantText: "truncated"},
		{name: "empty line", line: ``, wantField: "(line)", wantText: "empty"},
		{name: "not JSON", line: `task=X`, wantField: "(line)", wantText: "not valid JSON at byte 2"},
		{name: "trailing object", line: `{"task":{"type":"X"}} {"task":{"type":"Y"}}`, wantField: "(line)", wantText: "data after the JSON object"},
		{name: "trailing garbage", line: `{"task":{"type":"X"}}x`, wantField: "(line)", wantText: "data after the JSON object"},
		{name: "task is a string", line: `{"task":"RecaptchaV2TaskProxyless"}`, wantField: "task", wantText: "must be an object"},
		{name: "id is a number", line: `{"id":42,"task":{"type":"X"}}`, wantField: "id", wantText: "must be a string"},
		{name: "maxRetries is a string", line: `{"maxRetries":"3","task":{"type":"X"}}`, wantField: "maxRetries", wantText: "must be a number"},
		{name: "a list is not a job", line: `[{"task":{"type":"X"}}]`, wantField: "(line)"},
		{name: "callbackUrl is read", line: `{"callbackUrl":"https://hooks.example/cb","task":{"type":"X"}}`, check: func(t *testing.T, job enqueue.Job) {
			require.Equal(t, "https://hooks.example/cb", job.CallbackURL)
		}},
		{name: "the gateway's own fields are not job fields", line: `{"keyName":"alpha","task":{"type":"X"}}`,
			wantField: "keyName", wantText: "is not a job field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			job, err := enqueue.ParseJob([]byte(tt.line))
			if tt.wantField == "" {
				require.NoError(t, err)
				tt.check(t, job)
				return
			}
			var verr *enqueue.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.wantField, verr.Field, "error: %v", err)
			require.Contains(t, verr.Problem, tt.wantText)
			require.Equal(t, enqueue.Job{}, job, "a refused line gives the zero Job")
		})
	}
}

// TestParseJobRoundTrip checks that a job encoded by encoding/json parses back unchanged, so a
// producer that builds a Job in Go and writes it to a batch file gets the same job.
func TestParseJobRoundTrip(t *testing.T) {
	t.Parallel()
	jobs := []enqueue.Job{
		{Task: map[string]any{"type": "ImageToTextTask", "body": "iVBORw0KGgo="}},
		{ID: "a-1", Queue: "low", Provider: "CapSolver", Settings: map[string]any{"x": "y"}, Deadline: "2030-01-01T00:00:00Z",
			MaxRetries: intPtr(0), CallbackURL: "https://hooks.example/cb", Task: website("TurnstileToken", "proxy", "http://u:p@10.0.0.1:3128")},
	}
	for _, job := range jobs {
		line, err := json.Marshal(job)
		require.NoError(t, err)
		got, err := enqueue.ParseJob(line)
		require.NoError(t, err, "%s", line)
		again, err := json.Marshal(got)
		require.NoError(t, err)
		require.JSONEq(t, string(line), string(again))
		if job.MaxRetries != nil {
			require.Equal(t, *job.MaxRetries, *got.MaxRetries, "maxRetries 0 survives (it is not omitted)")
		}
	}
}

// FuzzParseJob checks that no job line panics the parser or the validator, and that a line both
// accept survives a round trip through encoding/json unchanged: what a producer writes back is
// the job it read.
func FuzzParseJob(f *testing.F) {
	f.Add([]byte(`{"id":"a","queue":"low","provider":"CapSolver","settings":{"x":1},"deadline":"10m","maxRetries":2,` +
		`"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"}}`))
	f.Add([]byte(`{"task":{"type":"ImageToTextTask","body":"data:image/png;base64,iVBORw0KGgo="}}`))
	f.Add([]byte(`{"task":{"type":"RecaptchaV2Task","websiteURL":"https://a.example","websiteKey":"k","proxy":"http://u:p@h:1"}}`))
	f.Add([]byte(`{"task":{"type":"X","proxyType":"socks5","proxyAddress":"h","proxyPort":"1080"}}`))
	f.Add([]byte(`{"deadline":"2030-01-02T15:04:05Z","task":{"type":"X"}} {}`))
	f.Add([]byte(`{"task":{"type":"X"`))
	f.Fuzz(func(t *testing.T, line []byte) {
		job, err := parseJobChecked(line)
		if err != nil {
			var verr *enqueue.ValidationError
			require.ErrorAs(t, err, &verr, "every refusal names a field: %v", err)
			require.NotEmpty(t, verr.Field)
			return
		}
		again, err := json.Marshal(job)
		require.NoError(t, err)
		back, err := parseJobChecked(again)
		require.NoError(t, err, "a valid job must read back: %s", again)
		twice, err := json.Marshal(back)
		require.NoError(t, err)
		require.JSONEq(t, string(again), string(twice))
		_ = redact.JSON(line)
	})
}

// parseJobChecked is what a batch line goes through: ParseJob, then Validate.
func parseJobChecked(line []byte) (enqueue.Job, error) {
	job, err := enqueue.ParseJob(line)
	if err != nil {
		return job, err
	}
	return job, job.Validate()
}
