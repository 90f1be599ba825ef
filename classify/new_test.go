package classify_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

func TestNew(t *testing.T) {
	t.Parallel()
	p, err := classify.New(classify.Settings{Name: "mine", MaxRetries: 4, BaseDelay: time.Second, MaxDelay: 30 * time.Second,
		Codes: []classify.Rule{
			{ErrorCode: "CAPTCHA_UNSOLVABLE", Decision: classify.Failed},
			{ErrorCode: "MY_CODE", Decision: classify.Retry, ErrorID: 2, Custom: true, Reason: "Ours."},
		}})
	require.NoError(t, err)
	require.Equal(t, "mine", p.Name())
	require.Equal(t, 4, p.MaxRetries())
	require.Equal(t, 15*time.Second, p.RetryDelay(10, 0), "capped at 30s, half of it fixed")
	v := p.Classify(classify.Error{ErrorID: 1, ErrorCode: "CAPTCHA_UNSOLVABLE"})
	require.Equal(t, classify.Verdict{Decision: classify.Failed, Code: "CAPTCHA_UNSOLVABLE", Reason: "Policy mine sets this code to failed."}, v)
	require.Equal(t, classify.Rule{ErrorID: 2, ErrorCode: "MY_CODE", Decision: classify.Retry, Reason: "Ours.", Custom: true}, p.Rules()[36])

	d, err := classify.New(classify.Settings{})
	require.NoError(t, err)
	require.Equal(t, classify.Default().Rules(), d.Rules())
	require.Equal(t, "default", d.Name())
}

func TestNewBad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		s    classify.Settings
		want string
	}{
		{"retries", classify.Settings{MaxRetries: 101}, "MaxRetries must be between 1 and 100, got 101"},
		{"base delay", classify.Settings{BaseDelay: time.Millisecond}, "BaseDelay must be between 100ms and 1m0s, got 1ms"},
		{"max below base", classify.Settings{BaseDelay: 5 * time.Second, MaxDelay: time.Second}, "MaxDelay (1s) must be at least BaseDelay (5s)"},
		{"max wait below min", classify.Settings{MinWait: 5 * time.Minute}, "MaxWait (1m0s) must be at least MinWait (5m0s)"},
		{"typo", classify.Settings{Codes: []classify.Rule{{ErrorCode: "CAPCHA_UNSOLVABLE", Decision: classify.Failed}}},
			`code "CAPCHA_UNSOLVABLE" is not a known code: did you mean CAPTCHA_UNSOLVABLE?`},
		{"decision", classify.Settings{Codes: []classify.Rule{{ErrorCode: "TASK_TIMEOUT", Decision: "skip"}}}, `code "TASK_TIMEOUT": unknown decision "skip"`},
		{"twice", classify.Settings{Codes: []classify.Rule{{ErrorCode: "TASK_TIMEOUT", Decision: classify.Dead}, {ErrorCode: "TASK_TIMEOUT", Decision: classify.Retry}}},
			`code "TASK_TIMEOUT" is set twice`},
		{"errorId", classify.Settings{Codes: []classify.Rule{{ErrorCode: "RATE_LIMITED", Decision: classify.Dead, ErrorID: 2}}},
			`code "RATE_LIMITED" has errorId 1 in AnySolver's table, not 2`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := classify.New(tt.s)
			require.Nil(t, p)
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestCheckCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code   string
		custom bool
		want   string // "" for accepted
	}{
		{"CAPTCHA_UNSOLVABLE", false, ""},
		{"HTTP_5XX", false, ""},
		{"BUDGET_SPENT", false, ""},
		{"MY_CODE", true, ""},
		{"CAPCHA_UNSOLVABLE", false, "did you mean CAPTCHA_UNSOLVABLE?"},
		{"ERROR_ZERO_BALANSE", false, "did you mean ERROR_ZERO_BALANCE?"},
		{"HTTP_5XY", false, "did you mean HTTP_5XX?"},
		{"MY_CODE", false, "is not one of AnySolver's"},
		{"RATE_LIMITED", true, "is a known code, not a custom one"},
		{"lower_case", true, "want an UPPER_SNAKE code"},
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			t.Parallel()
			err := classify.CheckCode(tt.code, tt.custom)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

// TestRetryBudget: a job's own budget wins over the policy's, and asynq's MaxRetry, when known
// and lower, cuts it to one retry short of itself.
func TestRetryBudget(t *testing.T) {
	t.Parallel()
	own := func(n int) *int { return &n }
	p := classify.Default() // maxRetries 10
	tests := []struct {
		name     string
		own      *int
		maxRetry int
		want     int
	}{
		{"the policy's", nil, 0, classify.MaxRetriesDefault},
		{"the job's own", own(3), 0, 3},
		{"the job's own zero", own(0), 101, 0},
		{"asynq's MaxRetry lower", nil, 5, 4},
		{"asynq's MaxRetry higher", own(7), 101, 7},
		{"asynq's MaxRetry of zero is unknown", own(7), 0, 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, p.RetryBudget(tt.own, tt.maxRetry))
		})
	}
}
