package attempt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

// TestDecideSolvedTokenExpiry: a solved job's record carries when its token expires, counted
// from the attempt's end by its task type's life; an image's text and a job that did not solve
// carry none.
func TestDecideSolvedTokenExpiry(t *testing.T) {
	t.Parallel()
	tests := []struct {
		taskType string
		ending   ending
		want     time.Time
	}{
		{"RecaptchaV2TaskProxyless", ending{kind: endedSolved}, decideNow.Add(120 * time.Second)},
		{"ReCaptchaV3EnterpriseToken", ending{kind: endedSolved}, decideNow.Add(120 * time.Second)},
		{"NoCaptchaTaskProxyless", ending{kind: endedSolved}, decideNow.Add(120 * time.Second)},
		{"HCaptchaTask", ending{kind: endedSolved}, decideNow.Add(120 * time.Second)},
		{"PopularCaptchaTokenProxyLess", ending{kind: endedSolved}, decideNow.Add(120 * time.Second)},
		{"TurnstileTaskProxyless", ending{kind: endedSolved}, decideNow.Add(300 * time.Second)},
		{"ImageToTextTask", ending{kind: endedSolved}, time.Time{}},
		{"RecaptchaV2TaskProxyless", classified("DOMAIN_BANNED", 1), time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.taskType+"/"+endingName(tt.ending.kind), func(t *testing.T) {
			t.Parallel()
			in := input(tt.ending, func(in *decideInput) { in.payload.Task = map[string]any{"type": tt.taskType} })
			tr := decide(testRules, in)
			require.True(t, tr.Write)
			require.Equal(t, tt.want, tr.Record.ExpiresAt)
			if tt.ending.kind == endedSolved {
				require.Equal(t, enqueue.StateSolved, tr.State)
				require.Equal(t, decideNow, tr.Record.FinishedAt)
			}
		})
	}
}

func endingName(k endingKind) string {
	for _, e := range endingKinds {
		if e.kind == k {
			return e.name
		}
	}
	return "?"
}
