package polling

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPollSigmaPutsP90At30s(t *testing.T) {
	t.Parallel()
	p90 := float64(pollMedian) * math.Exp(pollSigma*1.2816)
	require.InDelta(t, float64(pollP90), p90, float64(time.Millisecond))
}

func TestQuantile(t *testing.T) {
	t.Parallel()
	require.Equal(t, time.Duration(0), quantile(nil, 0.5))
	sorted := []time.Duration{1, 2, 3, 4, 5}
	require.Equal(t, time.Duration(3), quantile(sorted, 0.5))
	require.Equal(t, time.Duration(5), quantile(sorted, 0.9))
}
