package classify_test

import (
	"regexp"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

func TestOwnCodes(t *testing.T) {
	t.Parallel()
	inTable := map[string]bool{}
	for _, r := range classify.Default().Rules() {
		inTable[r.ErrorCode] = true
	}
	own := classify.OwnCodes()
	require.NotEmpty(t, own)
	for _, c := range own {
		require.Regexp(t, regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`), c)
		require.False(t, inTable[c], "%s is solvequeue's own, not a code of the table", c)
	}
	own[0] = "CHANGED"
	require.NotEqual(t, "CHANGED", classify.OwnCodes()[0], "a fresh slice each time")
}
