package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// issue7Keys are the keys `solvequeue bench --json` promises (issue 7).
var issue7Keys = []string{
	"floor_jobs_per_s", "naive_jobs_per_s", "e2e_jobs_per_s", "e2e_vs_naive", "e2e_vs_floor",
	"inflight_jobs", "inflight_solve_s", "inflight_wall_s", "inflight_peak_rss_mb",
	"polls_per_solve", "polls_per_solve_fixed3s", "added_latency_p50_ms", "added_latency_p50_ms_fixed3s",
	"added_latency_mean_ms", "added_latency_mean_ms_fixed3s", "added_latency_p90_ms", "added_latency_p90_ms_fixed3s",
	"submit_jobs_per_s", "sequential_submit_jobs_per_s", "submit_vs_sequential",
	"creates_per_job_mix", "creates_per_job_mix_retry_all",
	"inflight_floor_rss_mb", // issue 16: plain asynq's peak RSS beside the worker's, same run
}

// ratioKeys are the report's ratios: each is the median of its per-round ratios, with X_min and
// X_max beside it (issue 24).
var ratioKeys = []string{
	"e2e_vs_naive", "e2e_vs_floor", "budget_e2e_vs_plain", "inflight_rss_vs_floor", "polls_per_solve_vs_fixed3s",
	"submit_vs_sequential", "gateway_create_vs_submit", "gateway_result_vs_status",
}

// TestBenchQuickJSON runs the built binary's `bench --json --quick` (every section at a tiny
// size, its own redis-server, its in-flight worker a child process of the same binary) and
// checks that stdout is one JSON object with every key of issue 7 set to a number. It checks
// no figure: the figures of a quick run on a shared machine mean nothing.
func TestBenchQuickJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("runs every bench section at its quick size: about a minute")
	}
	enqueuetest.NeedRedisServer(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*hangGuard+4*time.Minute) // a hang guard: about a minute alone, several on a busy machine
	defer cancel()
	cmd := exec.CommandContext(ctx, solvequeueBinary(t), "bench", "--json", "--quick")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr:\n%s", tail(stderr.String(), 40))

	var report map[string]any
	dec := json.NewDecoder(&stdout)
	require.NoError(t, dec.Decode(&report), "stdout is one JSON object")
	require.False(t, dec.More(), "and nothing after it")
	for _, k := range issue7Keys {
		require.Contains(t, report, k)
		_, isNumber := report[k].(float64)
		require.True(t, isNumber, "%s is %v, want a number", k, report[k])
	}
	for k := range report {
		if strings.Contains(k, "_vs_") && !strings.HasSuffix(k, "_min") && !strings.HasSuffix(k, "_max") {
			require.Contains(t, ratioKeys, k, "every ratio of the report is checked for its spread")
		}
	}
	for _, k := range ratioKeys {
		med, lo, hi := report[k], report[k+"_min"], report[k+"_max"]
		m, ok1 := med.(float64)
		l, ok2 := lo.(float64)
		h, ok3 := hi.(float64)
		require.True(t, ok1 && ok2 && ok3, "%s, %s_min and %s_max are numbers: %v, %v, %v", k, k, k, med, lo, hi)
		require.True(t, l <= m && m <= h, "%s: min %v <= median %v <= max %v", k, l, m, h)
	}
	ctxInfo, ok := report["context"].(map[string]any)
	require.True(t, ok, "a context object says what the figures were measured on")
	require.Equal(t, true, ctxInfo["quick"])
	if _, err := exec.LookPath("redis-cli"); err == nil {
		details, _ := ctxInfo["details"].(map[string]any)
		for _, k := range []string{"e2e_jobs_per_s_cluster", "e2e_jobs_per_s_single", "cluster_e2e_vs_single", "cluster_e2e_vs_single_min", "cluster_e2e_vs_single_max"} {
			_, isNumber := details[k].(float64)
			require.True(t, isNumber, "the cluster section reports %s beside one Redis: %v", k, details[k])
		}
	}
	require.Contains(t, stderr.String(), "bench: [throughput]", "progress goes to stderr")
	require.Contains(t, stderr.String(), "bench: [throughput] round 3/3", "a progress line per round")
}
