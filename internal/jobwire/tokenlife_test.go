package jobwire

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
)

func TestTokenLife(t *testing.T) {
	t.Parallel()
	tests := []struct {
		typ  string
		life time.Duration // 0: no token life
	}{
		{"RecaptchaV2TaskProxyless", 120 * time.Second},
		{"RecaptchaV2EnterpriseTask", 120 * time.Second},
		{"RecaptchaV3TaskProxyless", 120 * time.Second},
		{"ReCaptchaV3EnterpriseToken", 120 * time.Second},
		{"NoCaptchaTask", 120 * time.Second},
		{"HCaptchaTaskProxyless", 120 * time.Second},
		{"PopularCaptchaToken", 120 * time.Second},
		{"TurnstileTaskProxyless", 300 * time.Second},
		{"turnstiletoken", 300 * time.Second},
		{"ImageToTextTask", 0},
		{"FunCaptchaTaskProxyless", 0},
		{"GeeTestTask", 0},
		{"", 0},
	}
	solved := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			t.Parallel()
			life, ok := TokenLife(tt.typ)
			require.Equal(t, tt.life != 0, ok)
			require.Equal(t, tt.life, life)
			want := time.Time{}
			if ok {
				want = solved.Add(tt.life)
			}
			require.Equal(t, want, TokenExpiresAt(tt.typ, solved))
			require.True(t, TokenExpiresAt(tt.typ, time.Time{}).IsZero(), "no solve time, no expiry")
		})
	}
}

// TestOutcomeOfExpiresAt: the record's expiry reaches the outcome of a solved job (and its JSON
// as expiresAt), never that of a job in any other state.
func TestOutcomeOfExpiresAt(t *testing.T) {
	t.Parallel()
	finished := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	expires := finished.Add(120 * time.Second)
	rec, err := json.Marshal(Record{State: StateSolved, Solution: json.RawMessage(`{"token":"t"}`), FinishedAt: finished, ExpiresAt: expires})
	require.NoError(t, err)
	tests := []struct {
		state asynq.TaskState
		want  time.Time
	}{
		{asynq.TaskStateCompleted, expires},
		{asynq.TaskStateRetry, time.Time{}},
		{asynq.TaskStateArchived, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.state.String(), func(t *testing.T) {
			t.Parallel()
			out := OutcomeOf(&asynq.TaskInfo{ID: "j", Queue: "default", State: tt.state, Result: rec})
			require.Equal(t, tt.want, out.ExpiresAt)
			require.Equal(t, !tt.want.IsZero(), out.Expired(expires), "expired at the instant of expiry")
			require.False(t, out.Expired(expires.Add(-time.Nanosecond)))
			data, err := json.Marshal(out)
			require.NoError(t, err)
			if tt.want.IsZero() {
				require.NotContains(t, string(data), "expiresAt")
			} else {
				require.Contains(t, string(data), `"expiresAt":"2026-12-01T10:02:00Z"`)
			}
		})
	}
}
