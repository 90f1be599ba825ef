package soak

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

func TestRunShort(t *testing.T) {
	t.Parallel()
	r := enqueuetest.Redis(t)
	var progress bytes.Buffer
	report, err := Run(context.Background(), Options{Duration: 6 * time.Second, Interval: 2 * time.Second, Rate: 10,
		RedisURL: r.URL(), Progress: &progress})
	require.NotNil(t, report, "err: %v", err)
	if err != nil {
		require.ErrorIs(t, err, ErrNotFlat, "a short run may be noisy, nothing else may fail")
	}
	phases := map[string]int{}
	for _, s := range report.Samples {
		phases[s.Phase]++
		require.Positive(t, s.RSSBytes)
		require.Positive(t, s.Goroutines)
		require.Positive(t, s.Sockets)
		require.Positive(t, s.RedisMemory)
	}
	require.Equal(t, 1, phases["start"])
	require.GreaterOrEqual(t, phases["load"], 2)
	require.Equal(t, 1, phases["drained"])
	tot := report.Totals
	require.Positive(t, tot.Submitted)
	require.Zero(t, tot.Lost)
	require.Zero(t, tot.Dead, "the fault mix has nothing that ends dead")
	require.Equal(t, tot.Submitted, tot.Solved+tot.Failed)
	require.GreaterOrEqual(t, tot.CreatesPerJob, 1.0)
	require.Len(t, report.Checks, 5)
	require.Equal(t, len(report.Samples)+2, strings.Count(progress.String(), "\n"), "a line per sample, a title and a header:\n%s", progress.String())

	data, err := json.Marshal(report)
	require.NoError(t, err)
	for _, field := range []string{`"samples"`, `"atSeconds"`, `"rssBytes"`, `"goroutines"`, `"sockets"`, `"redisUsedMemory"`, `"flat"`, `"checks"`} {
		require.Contains(t, string(data), field)
	}
	var table bytes.Buffer
	require.NoError(t, WriteTable(&table, report))
	require.Contains(t, table.String(), "verdict: ")
}

func TestVerdict(t *testing.T) {
	t.Parallel()
	loaded := func(rss int64, goroutines, sockets int, redisMB int64) Sample {
		return Sample{Phase: "load", RSSBytes: rss << 20, Goroutines: goroutines, Sockets: sockets, RedisMemory: redisMB << 20}
	}
	tests := []struct {
		name    string
		samples []Sample
		lost    int64
		flat    bool
		failed  string
	}{
		{"flat with noise", []Sample{{Phase: "start"}, loaded(30, 200, 40, 2), loaded(34, 260, 60, 3), loaded(31, 210, 45, 2), loaded(33, 240, 58, 3), {Phase: "drained"}}, 0, true, ""},
		{"leaking memory", []Sample{loaded(30, 200, 40, 2), loaded(40, 200, 40, 2), loaded(60, 200, 40, 2), loaded(90, 200, 40, 2)}, 0, false, "rss_mb"},
		{"leaking goroutines", []Sample{loaded(30, 200, 40, 2), loaded(30, 300, 40, 2), loaded(30, 450, 40, 2), loaded(30, 600, 40, 2)}, 0, false, "goroutines"},
		{"leaking sockets", []Sample{loaded(30, 200, 40, 2), loaded(30, 200, 60, 2), loaded(30, 200, 120, 2)}, 0, false, "sockets"},
		{"growing redis", []Sample{loaded(30, 200, 40, 2), loaded(30, 200, 40, 6), loaded(30, 200, 40, 12)}, 0, false, "redis_mb"},
		{"a job lost", []Sample{loaded(30, 200, 40, 2), loaded(30, 200, 40, 2)}, 1, false, "jobs_lost"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &Report{Samples: tt.samples, Totals: Totals{Lost: tt.lost}}
			r.verdict()
			require.Equal(t, tt.flat, r.Flat, "%+v", r.Checks)
			require.Contains(t, r.failedChecks(), tt.failed)
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, Options{}.Validate())
	require.ErrorContains(t, Options{Duration: time.Minute, Interval: 40 * time.Second}.Validate(), "at least two intervals")
	require.ErrorContains(t, Options{Rate: 5000}.Validate(), "at most 2000")
}
