package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// TestCLITokenExpiry: a solved token's outcome says when the token stops being accepted, by its
// task type, in every place a producer reads it: the outcome line of enqueue --wait, status
// (text and --json), and the Go client's Wait and Status. An image's text says nothing.
func TestCLITokenExpiry(t *testing.T) {
	t.Parallel()
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{"sk-cli-test"},
		Script: anysolvertest.DirectiveScript(nil)})
	vars := map[string]string{"REDIS_URL": rig.Redis.URL()}
	rig.Start(t, worker.Config{Queues: map[string]int{enqueue.DefaultQueue: 1},
		Concurrency: 5, ShutdownTimeout: time.Second, Poll: worker.PollConfig{Fixed: true, Interval: 50 * time.Millisecond},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	client, err := enqueue.NewClient(enqueue.Config{Redis: rig.Open(t)})
	require.NoError(t, err)

	tests := []struct {
		id, job string
		life    time.Duration // 0: no expiry
	}{
		{"fresh-turnstile", `{"id":"fresh-turnstile","task":{"type":"TurnstileTaskProxyless","websiteURL":"https://a.example","websiteKey":"sq:solve=50ms"}}`, 300 * time.Second},
		{"fresh-recaptcha", `{"id":"fresh-recaptcha","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"sq:solve=50ms"}}`, 120 * time.Second},
		{"fresh-hcaptcha", `{"id":"fresh-hcaptcha","task":{"type":"HCaptchaTaskProxyless","websiteURL":"https://a.example","websiteKey":"sq:solve=50ms"}}`, 120 * time.Second},
		{"fresh-image", `{"id":"fresh-image","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			wait := cliRun(t, vars, tt.job, "enqueue", "--json", "-", "--wait")
			require.Equal(t, 0, wait.code, wait.stderr)
			var line enqueue.Outcome
			require.NoError(t, json.Unmarshal([]byte(wait.stdout), &line), wait.stdout)
			require.Equal(t, enqueue.StateSolved, line.State, wait.stdout)

			status := cliRun(t, vars, "", "status", tt.id, "--json")
			require.Equal(t, 0, status.code, status.stderr)
			var st enqueue.Outcome
			require.NoError(t, json.Unmarshal([]byte(status.stdout), &st))
			text := cliRun(t, vars, "", "status", tt.id)
			require.Equal(t, 0, text.code, text.stderr)

			ctx := context.Background()
			waited, err := client.Wait(ctx, tt.id)
			require.NoError(t, err)
			read, err := client.Status(ctx, tt.id)
			require.NoError(t, err)

			if tt.life == 0 {
				require.NotContains(t, wait.stdout, "expiresAt")
				require.NotContains(t, status.stdout, "expiresAt")
				require.NotContains(t, text.stdout, "token expires")
				require.True(t, waited.ExpiresAt.IsZero())
				require.True(t, read.ExpiresAt.IsZero())
				return
			}
			require.Equal(t, tt.life, line.ExpiresAt.Sub(line.FinishedAt), wait.stdout)
			for _, o := range []enqueue.Outcome{st, waited, read} {
				require.True(t, line.ExpiresAt.Equal(o.ExpiresAt), "%s != %s", line.ExpiresAt, o.ExpiresAt)
			}
			require.Contains(t, text.stdout, "token expires  "+line.ExpiresAt.UTC().Format(time.RFC3339)+" (")
		})
	}
}

// TestExpiryText says how far a token's expiry is from now, before and after it.
func TestExpiryText(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 1, 10, 2, 0, 0, time.UTC)
	o := enqueue.Outcome{State: enqueue.StateSolved, ExpiresAt: at}
	tests := []struct {
		now  time.Time
		want string
	}{
		{at.Add(-90 * time.Second), "2026-12-01T10:02:00Z (in 1m30s)"},
		{at, "2026-12-01T10:02:00Z (expired 0s ago)"},
		{at.Add(5 * time.Second), "2026-12-01T10:02:00Z (expired 5s ago)"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, expiryText(o, tt.now))
	}
}
