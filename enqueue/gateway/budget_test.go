package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// TestSpentBudget: a key whose queue's budget is spent gets ERROR_ZERO_BALANCE from createTask
// (nothing queued), and getBalance answers what the window has left, per key.
func TestSpentBudget(t *testing.T) {
	t.Parallel()
	b, policy := setupBudget(t, "queues:\n  alpha:\n    budget: {window: 1h, maxCost: 0.01, maxCreateTasks: 2, estimatedCost: 0.002}\n")

	a := b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": alphaKey})
	require.Equal(t, "0", fmt.Sprint(a["errorId"]))
	require.InDelta(t, 0.01, number(t, a["balance"]), 1e-9, "a capped key's balance is its budget's room")

	taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("room"))))
	// Two createTask calls spend the window, as workers would reserve them.
	lg := ledger.New(b.rc)
	for range 2 {
		_, ok, _, err := lg.Reserve(context.Background(), "alpha", *policy.Queue("alpha").Budget, "")
		require.NoError(t, err)
		require.True(t, ok)
	}
	a = b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("spent")))
	requireError(t, a, 1, gateway.CodeZeroBalance)
	require.Contains(t, a["errorDescription"], "budget")
	requirePending(t, b, "alpha", 1)

	a = b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": alphaKey})
	require.InDelta(t, 0.006, number(t, a["balance"]), 1e-9)

	// Another key's queue has no budget: untouched.
	taskID(t, b.call(t, gateway.MethodCreateTask, create(betaKey, recaptchaTask("beta"))))
}

func number(t *testing.T, v any) float64 {
	t.Helper()
	n, ok := v.(json.Number)
	require.True(t, ok, "a JSON number, got %#v", v)
	f, err := n.Float64()
	require.NoError(t, err)
	return f
}

// TestSpentBudgetFollowsTheWorkersRule: the gateway answers ERROR_ZERO_BALANCE exactly when the
// workers would hold the queue, by the ledger's one rule for room: with a sliver of money left
// that is more than estimatedCost but less than what a task type is observed to cost, it
// refuses (where "anything left" would have queued a job no worker takes); once a settlement
// leaves room for one such createTask, it accepts.
func TestSpentBudgetFollowsTheWorkersRule(t *testing.T) {
	t.Parallel()
	b, policy := setupBudget(t, "queues:\n  alpha:\n    budget: {window: 1h, maxCost: 0.012, estimatedCost: 0.002}\n")
	ctx := context.Background()
	lg := ledger.New(b.rc)
	bud := *policy.Queue("alpha").Budget

	// Workers reserved a reCAPTCHA and an image task; the reCAPTCHA cost 0.006.
	dear, ok, _, err := lg.Reserve(ctx, "alpha", bud, "RecaptchaV2TaskProxyless")
	require.NoError(t, err)
	require.True(t, ok)
	cheap, ok, _, err := lg.Reserve(ctx, "alpha", bud, "ImageToTextTask")
	require.NoError(t, err)
	require.True(t, ok)
	_, err = lg.Settle(ctx, "alpha", dear, 0.006)
	require.NoError(t, err)

	// 0.004 left: a worker would refuse a reCAPTCHA, and so does the gateway.
	_, ok, _, err = lg.Reserve(ctx, "alpha", bud, "RecaptchaV2TaskProxyless")
	require.NoError(t, err)
	require.False(t, ok)
	a := b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("sliver")))
	requireError(t, a, 1, gateway.CodeZeroBalance)

	// The image task's createTask was refused by AnySolver: 0.006 is room for one reCAPTCHA.
	_, err = lg.Settle(ctx, "alpha", cheap, 0)
	require.NoError(t, err)
	taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("room"))))
	requirePending(t, b, "alpha", 1) // the refused createTask queued nothing
	_, ok, _, err = lg.Reserve(ctx, "alpha", bud, "RecaptchaV2TaskProxyless")
	require.NoError(t, err)
	require.True(t, ok, "the job the gateway accepted fits")
}

// setupBudget is setup with the gateway given a policy file (policyYAML) that caps key alpha's
// queue: it answers a spent budget as the workers would hold it.
func setupBudget(t *testing.T, policyYAML string) (*testBundle, *policyfile.Policy) {
	t.Helper()
	policy, err := policyfile.Parse("policy.yaml", []byte(policyYAML))
	require.NoError(t, err)
	b := setup(t, mustKeys(t))
	h, err := gateway.NewHandler(gateway.Config{Client: b.client, Redis: b.rc, Keys: mustKeys(t), Policy: policy,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	b.url = startHTTP(t, h)
	return b, policy
}
