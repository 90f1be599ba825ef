package policyfile_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/policyfile"
)

func TestParseQueues(t *testing.T) {
	t.Parallel()
	src := `
queues:
  scrapers:
    budget: {window: 24h, maxCost: 20.00, maxCreateTasks: 5000, estimatedCost: 0.002}
    providers: [CapSolver, CapMonster]
  counted:
    budget:
      window: 10s
      maxCreateTasks: 3
  routed:
    providers: [CapSolver]
`
	p, err := policyfile.Parse("q.yaml", []byte(src))
	require.NoError(t, err)
	require.Equal(t, policyfile.QueuePolicy{
		Budget:    &policyfile.Budget{Window: 24 * time.Hour, MaxCost: 20, MaxCreateTasks: 5000, EstimatedCost: 0.002},
		Providers: []string{"CapSolver", "CapMonster"},
	}, p.Queue("scrapers"))
	require.Equal(t, &policyfile.Budget{Window: 10 * time.Second, MaxCreateTasks: 3}, p.Queue("counted").Budget)
	require.Nil(t, p.Queue("routed").Budget)
	require.Equal(t, policyfile.QueuePolicy{}, p.Queue("elsewhere"))
	require.Len(t, p.Queues(), 3)
	require.Equal(t, policyfile.QueuePolicy{}, policyfile.Default().Queue("scrapers"))
	require.Equal(t, []string{"CapMonster", "CapSolver"}, p.ProviderNames())
	require.True(t, p.NamesProvider("CapMonster"))
	require.False(t, p.NamesProvider("capmonster"), "spelled exactly: the breaker's key is the name as it is")
	require.False(t, p.NamesProvider("Invented"))
	require.False(t, policyfile.Default().NamesProvider("CapSolver"))
	require.Empty(t, (*policyfile.Policy)(nil).ProviderNames())
}

func TestParseQueuesBad(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, src, want string }{
		{"window too short", "queues:\n  q:\n    budget: {window: 5s, maxCreateTasks: 1}\n", "line 3: queues.q.budget.window must be between 10s and 744h0m0s, got 5s"},
		{"window too long", "queues:\n  q:\n    budget: {window: 800h, maxCost: 1}\n", "line 3: queues.q.budget.window must be between"},
		{"no window", "queues:\n  q:\n    budget: {maxCost: 1}\n", "line 3: queues.q.budget: missing window"},
		{"no limit", "queues:\n  q:\n    budget:\n      window: 1h\n", "line 3: queues.q.budget: set maxCost, maxCreateTasks or both"},
		{"negative cost", "queues:\n  q:\n    budget:\n      window: 1h\n      maxCost: -1\n", "line 5: queues.q.budget.maxCost must be above 0"},
		{"zero cost", "queues:\n  q:\n    budget:\n      window: 1h\n      maxCost: 0\n", "line 5: queues.q.budget.maxCost must be above 0"},
		{"text cost", "queues:\n  q:\n    budget:\n      window: 1h\n      maxCost: lots\n", `line 5: queues.q.budget.maxCost: want an amount such as 20.00, got "lots"`},
		{"zero count", "queues:\n  q:\n    budget:\n      window: 1h\n      maxCreateTasks: 0\n", "line 5: queues.q.budget.maxCreateTasks must be between 1 and"},
		{"fractional count", "queues:\n  q:\n    budget:\n      window: 1h\n      maxCreateTasks: 2.5\n", "line 5: queues.q.budget.maxCreateTasks: want a whole number"},
		{"estimate over the cap", "queues:\n  q:\n    budget: {window: 1h, maxCost: 0.01, estimatedCost: 0.02}\n",
			"line 3: queues.q.budget: estimatedCost 0.02 is more than maxCost 0.01"},
		{"unknown budget key", "queues:\n  q:\n    budget:\n      window: 1h\n      maxSpend: 3\n", `line 5: queues.q.budget: unknown key "maxSpend"`},
		{"unknown queue key", "queues:\n  q:\n    limit: 3\n", `line 3: queues.q: unknown key "limit" (want budget or providers)`},
		{"bad queue name", "queues:\n  \"a b\":\n    providers: [X]\n", `line 2: queues: queue name "a b"`},
		// A brace would change the Redis Cluster hash tag of the queue's keys (asynq issue #480).
		{"queue name with a brace", "queues:\n  \"t{1}\":\n    providers: [X]\n", `line 2: queues: queue name "t{1}"`},
		{"providers not a list", "queues:\n  q:\n    providers: CapSolver\n", "line 3: queues.q.providers: want a list of provider names"},
		{"provider twice", "queues:\n  q:\n    providers: [CapSolver, capsolver]\n", `line 3: queues.q.providers: provider "capsolver" is listed twice`},
		{"empty provider", "queues:\n  q:\n    providers: [\"\"]\n", "line 3: queues.q.providers: want a provider name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := policyfile.Parse("bad.yaml", []byte(tt.src))
			require.Nil(t, p)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
