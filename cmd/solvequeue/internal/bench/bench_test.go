package bench

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/bench/benchenv"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	ptr := benchenv.Ptr
	r := &Report{
		FloorJobsPerS: ptr(8000), NaiveJobsPerS: ptr(3000), E2EJobsPerS: ptr(2900), E2EVsNaive: ptr(0.967), E2EVsNaiveMin: ptr(0.94), E2EVsNaiveMax: ptr(1.02), E2EVsFloor: ptr(0.363),
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
	require.Regexp(t, `naive asynq handler\) +2900 +3000 +0\.967 \(0\.94–1\.02\)\n`, out, "a ratio with its spread: median (min–max)")
	require.Regexp(t, `no-op asynq handler\) +2900 +8000 +0\.363\n`, out, "a ratio without a spread: the median alone")
	require.Equal(t, 1, strings.Count(out, "MISSED"), "only the RSS target is missed:\n%s", out)
	require.Regexp(t, `inflight_peak_rss_mb +<= 256 +MISSED`, out)

	var empty bytes.Buffer
	require.NoError(t, WriteTable(&empty, &Report{}))
	require.Equal(t, len(targets), strings.Count(empty.String(), "not run"))
}
