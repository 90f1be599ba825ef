package main

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

func TestCLIBudget(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	policy := cliWriteFile(t, "policy.yaml", `
queues:
  scrapers:
    budget: {window: 1h, maxCost: 1.50, maxCreateTasks: 10}
  routed:
    providers: [CapSolver]
`)
	b := policyfile.Budget{Window: time.Hour, MaxCost: 1.5, MaxCreateTasks: 10, EstimatedCost: 0.25}
	lg := ledger.New(rc)
	for range 3 {
		_, ok, _, err := lg.Reserve(context.Background(), "scrapers", b, "")
		require.NoError(t, err)
		require.True(t, ok)
	}
	vars := map[string]string{"REDIS_URL": url}

	res := cliRun(t, vars, "", "budget", "--policy", policy, "--json")
	require.Equal(t, 0, res.code, res.stderr)
	var got struct{ Queues []ledger.Usage }
	require.NoError(t, json.Unmarshal([]byte(res.stdout), &got))
	require.Len(t, got.Queues, 1, "only queues with a budget")
	u := got.Queues[0]
	require.Equal(t, "scrapers", u.Queue)
	require.Equal(t, int64(3), u.CreateTasks)
	require.Equal(t, int64(7), u.RemainingCreateTasks)
	require.InDelta(t, 0.75, u.Cost, 1e-9)
	require.InDelta(t, 0.75, u.RemainingCost, 1e-9)
	require.False(t, u.NextRoom.IsZero())

	res = cliRun(t, vars, "", "budget", "--policy", policy)
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stdout, "scrapers")
	require.Contains(t, res.stdout, "3 of 10")
	require.Contains(t, res.stdout, "7 createTasks, 0.7500")

	res = cliRun(t, vars, "", "budget")
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, "--policy is required")

	bad := cliWriteFile(t, "bad.yaml", "queues:\n  q:\n    budget: {window: 1s, maxCost: 1}\n")
	res = cliRun(t, vars, "", "budget", "--policy", bad)
	require.Equal(t, 2, res.code)
	require.Contains(t, res.stderr, "line 3: queues.q.budget.window must be between 10s")
}
