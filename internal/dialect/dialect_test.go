package dialect_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/dialect"
)

// TestOutcomeAnswer: an outcome's code is answered in the dialect with its own code kept at the
// start of the description; a code with no dialect name, or one no row knows, answers itself.
func TestOutcomeAnswer(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		code, description         string
		wantCode, wantDesc, want2 string
	}{
		{"ERROR_ZERO_BALANCE", "no money", dialect.NoSlot, "ERROR_ZERO_BALANCE: no money", dialect.NoSlot},
		{"TASK_TIMEOUT", "", dialect.Unsolvable, "TASK_TIMEOUT", dialect.Unsolvable},
		{"INVALID_TASK_DATA", "bad", "INVALID_TASK_DATA", "bad", dialect.BadParameters},
		{"BUDGET_SPENT", "", "ERROR_ZERO_BALANCE", "BUDGET_SPENT", "ERROR_ZERO_BALANCE"},
		{"SOME_PROVIDER_CODE", "x", "SOME_PROVIDER_CODE", "x", dialect.Unsolvable},
	} {
		r := dialect.Outcome(tt.code)
		code, desc := r.Answer(tt.description)
		require.Equal(t, tt.wantCode, code, tt.code)
		require.Equal(t, tt.wantDesc, desc, tt.code)
		require.Equal(t, tt.want2, r.TwoCaptcha, tt.code)
	}
	rows := dialect.Rows()
	rows[0].Code = "changed"
	require.NotEqual(t, "changed", dialect.Rows()[0].Code, "Rows returns a copy")
}
