package bench

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

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

func TestWriteTable(t *testing.T) {
	t.Parallel()
	r := &Report{
		FloorJobsPerS: ptr(8000), NaiveJobsPerS: ptr(3000), E2EJobsPerS: ptr(2900), E2EVsNaive: ptr(0.967), E2EVsFloor: ptr(0.363),
		InflightJobs: ptr(10000), InflightSolveS: ptr(20), InflightWallS: ptr(23.5), InflightPeakRSSMB: ptr(270),
		PollsPerSolve: ptr(4.3), PollsPerSolveFixed3s: ptr(5.3), AddedLatencyP50Ms: ptr(1400), AddedLatencyP50MsFixed3s: ptr(1550),
		SubmitJobsPerS: ptr(50000), SequentialSubmitJobsPerS: ptr(20000), SubmitVsSequential: ptr(2.5),
		CreatesPerJobMix: ptr(1.08), CreatesPerJobMixRetryAll: ptr(4.08),
		Context: Context{Machine: "test", GoVersion: "go", Redis: "redis"},
	}
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, r))
	out := buf.String()
	for _, want := range []string{"2900", "4.08", "e2e_vs_naive", "MISSED"} {
		require.Contains(t, out, want)
	}
	require.Equal(t, 1, strings.Count(out, "MISSED"), "only the RSS target is missed:\n%s", out)
	require.Regexp(t, `inflight_peak_rss_mb +<= 256 +MISSED`, out)

	var empty bytes.Buffer
	require.NoError(t, WriteTable(&empty, &Report{}))
	require.Equal(t, len(targets), strings.Count(empty.String(), "not run"))
}
