package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
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
	"submit_vs_sequential", "gateway_create_vs_submit", "gateway_result_vs_status", "gateway_two_vs_one",
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

// TestBenchGateway2Quick runs the built binary's `bench --json --quick --only gateway2`: two
// `solvequeue gateway` child processes of the same binary on the bench's own redis-server against
// one. It checks that gateway_two_vs_one comes with its spread, that both sides' rates and the CPU
// per call of the gateways and of Redis are reported, that the progress shows the warm-up and
// every measured round, and that the children's GOMAXPROCS is the documented max(1, NumCPU/4)
// and both served on loopback ports of their own. The section itself fails unless every createTask of every run was queued and counted
// against the key's quota in Redis. No figure is judged: a quick run's mean nothing.
func TestBenchGateway2Quick(t *testing.T) {
	enqueuetest.NeedRedisServer(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*hangGuard+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, solvequeueBinary(t), "bench", "--json", "--quick", "--only", "gateway2")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + t.TempDir()}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "stderr:\n%s", tail(stderr.String(), 40))

	var report map[string]any
	require.NoError(t, json.NewDecoder(&stdout).Decode(&report))
	med, ok1 := report["gateway_two_vs_one"].(float64)
	lo, ok2 := report["gateway_two_vs_one_min"].(float64)
	hi, ok3 := report["gateway_two_vs_one_max"].(float64)
	require.True(t, ok1 && ok2 && ok3, "the ratio and its spread are numbers: %v", report)
	require.True(t, lo <= med && med <= hi, "min %v <= median %v <= max %v", lo, med, hi)
	for _, k := range []string{"gateway_one_process_create_tasks_per_s", "gateway_two_processes_create_tasks_per_s"} {
		v, ok := report[k].(float64)
		require.True(t, ok && v > 0, "%s is a positive rate: %v", k, report[k])
	}
	ctxInfo := report["context"].(map[string]any)
	details := ctxInfo["details"].(map[string]any)
	for _, side := range []string{"one", "two"} {
		for _, what := range []string{"gateways", "redis", "loadgen"} {
			_, ok := details["gateway2_"+side+"_cpu_us_per_call_"+what].(float64)
			require.True(t, ok, "CPU per call of %s in side %s: %v", what, side, details)
		}
	}
	for round := 1; round <= 3; round++ {
		require.Contains(t, stderr.String(), fmt.Sprintf("bench: [gateway2] round %d/3", round))
	}
	require.Contains(t, stderr.String(), "bench: [gateway2] warm-up")
	sizes := ctxInfo["sizes"].(map[string]any)
	require.Equal(t, float64(max(1, runtime.NumCPU()/4)), sizes["gateway2_gomaxprocs"])
	require.Regexp(t, `two gateway processes \(GOMAXPROCS=\d+ each\) at 127\.0\.0\.1:\d+ and 127\.0\.0\.1:\d+`, stderr.String())
}
