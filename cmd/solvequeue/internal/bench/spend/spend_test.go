package spend

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSpendMixFloor checks the mix is the issue's: per hundred jobs, 5 + 3 retried once, 12 that
// never succeed, 80 solved at once, which makes 1.08 createTask per job at best.
func TestSpendMixFloor(t *testing.T) {
	t.Parallel()
	total, creates := 0, 0
	for _, m := range spendMix {
		total += m.per100
		n := 1
		if strings.HasSuffix(m.directive, "*1") {
			n = 2 // one failure, then solved
		}
		creates += m.per100 * n
	}
	require.Equal(t, 100, total)
	require.Equal(t, 108, creates)
	keys := map[string]int{}
	for i := range 1000 {
		keys[strings.Split(mixKey(i), ";")[0]]++
	}
	require.Equal(t, 800, keys["sq:"], "80 %% solved at once")
	require.Equal(t, 20, keys["sq:create=UNKNOWN_PROVIDER_ERROR*1000"])
}
