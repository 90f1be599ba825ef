package console_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/console"
)

// TestJobTokenExpiry: the job page of a solved token says when the site stops accepting it,
// before and after that moment by the console's clock; an image's text says nothing of it.
func TestJobTokenExpiry(t *testing.T) {
	t.Parallel()
	b := setupBare(t)
	b.rig.Start(t, worker.Config{Queues: map[string]int{"default": 1}, Concurrency: 4,
		Poll: worker.PollConfig{Fixed: true, Interval: 50 * time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	ctx := context.Background()
	jobs := []enqueue.Job{
		{ID: "turnstile-1", Task: map[string]any{"type": "TurnstileTaskProxyless", "websiteURL": "https://a.example", "websiteKey": "sq:solve=50ms"}},
		{ID: "image-1", Task: map[string]any{"type": "ImageToTextTask", "body": "iVBORw0KGgo="}},
	}
	for _, j := range jobs {
		_, err := b.client.Submit(ctx, j)
		require.NoError(t, err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	token, err := b.client.Wait(waitCtx, "turnstile-1")
	require.NoError(t, err)
	require.Equal(t, 300*time.Second, token.ExpiresAt.Sub(token.FinishedAt))
	_, err = b.client.Wait(waitCtx, "image-1")
	require.NoError(t, err)

	var mu sync.Mutex
	now := token.ExpiresAt.Add(-4 * time.Minute)
	h, err := console.New(console.Config{Redis: b.rc, Policy: b.policy, Logger: b.log,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	web := newSession(t, srv.URL, "", "")
	when := token.ExpiresAt.UTC().Format("2006-01-02 15:04:05")

	status, body := web.get("/console/job?id=turnstile-1")
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, body, `<dd id="token-expires">`+when+` (4 min from now; the site accepts it until then)</dd>`)

	mu.Lock()
	now = token.ExpiresAt.Add(90 * time.Second)
	mu.Unlock()
	_, body = web.get("/console/job?id=turnstile-1")
	require.Contains(t, body, `<dd id="token-expires">`+when+` (<span class="badge bad">expired</span> 1 min ago)</dd>`)

	_, body = web.get("/console/job?id=image-1")
	require.Contains(t, body, `id="job-state">solved`)
	require.NotContains(t, body, "token-expires")
}
