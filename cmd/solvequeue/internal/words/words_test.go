package words_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/words"
)

func TestPlural(t *testing.T) {
	t.Parallel()
	tests := []struct {
		n    int
		want string
	}{{0, "0 jobs"}, {1, "1 job"}, {2, "2 jobs"}}
	for _, tt := range tests {
		require.Equal(t, tt.want, words.Plural(tt.n, "job"))
	}
}
