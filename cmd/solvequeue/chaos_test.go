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

// chaosGuard bounds a chaos run only so that a hung one ends: the run's own settle bound is
// below it.
const chaosGuard = 8 * time.Minute

// TestChaosRun runs `solvequeue soak --chaos --json` with its defaults (60 jobs, two worker
// subprocesses, one SIGKILL, one Redis restart from the AOF, two budget changes, three redrive
// rounds while callbacks are refused) and requires every fault to have happened and no
// invariant broken, the run's counts agreeing with the fake AnySolver's own.
func TestChaosRun(t *testing.T) {
	t.Parallel()
	enqueuetest.NeedRedisServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), chaosGuard)
	defer cancel()
	dir := t.TempDir()
	cmd := exec.CommandContext(ctx, solvequeueBinary(t), "soak", "--chaos", "--json", "--settle", "4m")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir(), "TMPDIR=" + dir}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if exit, ok := err.(*exec.ExitError); ok {
		code = exit.ExitCode()
	} else {
		require.NoError(t, err, stderr.String())
	}
	var report struct {
		Settled bool `json:"settled"`
		Totals  struct {
			Jobs               int   `json:"jobs"`
			Kills              int   `json:"workerKills"`
			RedisRestarts      int   `json:"redisRestarts"`
			BudgetChanges      int   `json:"budgetChanges"`
			RedriveRounds      int   `json:"redriveRounds"`
			Redrives           int   `json:"redrives"`
			CreateTaskCalls    int   `json:"createTaskCalls"`
			PaidTasks          int   `json:"paidTasks"`
			AllowedPaidTasks   int   `json:"allowedPaidTasks"`
			FakeCreates        int   `json:"fakeCreates"`
			FakeCreated        int   `json:"fakeCreated"`
			CallbackJobs       int   `json:"callbackJobs"`
			CallbacksDelivered int   `json:"callbacksDelivered"`
			CallbacksRefused   int64 `json:"callbacksRefused"`
		} `json:"totals"`
		Violations []struct {
			Invariant, JobID, Detail string
		} `json:"violations"`
	}
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &report), "exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), tail(stderr.String(), 40))
	t.Logf("chaos run, exit %d:\n%s", code, tail(stderr.String(), 40))
	tot := report.Totals
	require.Equal(t, 60, tot.Jobs)
	require.Equal(t, 1, tot.Kills)
	require.Equal(t, 1, tot.RedisRestarts)
	require.Equal(t, 2, tot.BudgetChanges)
	require.Equal(t, 3, tot.RedriveRounds)
	require.Positive(t, tot.Redrives, "dead letters were redriven")
	require.Positive(t, tot.CallbacksRefused, "callbacks were refused, then retried")
	require.Positive(t, tot.CallbackJobs)
	require.Equal(t, tot.FakeCreates, tot.CreateTaskCalls, "the run saw every createTask the fake counted")
	require.Equal(t, tot.FakeCreated, tot.PaidTasks, "and every task it charged for")
	for _, v := range report.Violations {
		t.Errorf("[%s] %s: %s", v.Invariant, v.JobID, v.Detail)
	}
	require.LessOrEqual(t, tot.PaidTasks, tot.AllowedPaidTasks)
	require.True(t, report.Settled, "every job and callback settled")
	require.Equal(t, 0, code, "no violation, exit 0")
}

// TestChaosRefusals checks what --chaos refuses before it starts anything: a lone worker, too
// few jobs, and a machine without redis-server, which it names.
func TestChaosRefusals(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		path string
		args []string
		code int
		says string
	}{
		{"one worker", os.Getenv("PATH"), []string{"--workers", "1"}, 2, "--workers must be between 2 and 8"},
		{"too few jobs", os.Getenv("PATH"), []string{"--jobs", "5"}, 2, "--jobs must be between 20 and 5000"},
		{"no redis-server", t.TempDir(), nil, 1, "redis-server not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(solvequeueBinary(t), append([]string{"soak", "--chaos"}, tt.args...)...)
			cmd.Env = []string{"PATH=" + tt.path, "HOME=" + os.TempDir()}
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit, string(out))
			require.Equal(t, tt.code, exit.ExitCode(), string(out))
			require.True(t, strings.Contains(string(out), tt.says), string(out))
		})
	}
}
