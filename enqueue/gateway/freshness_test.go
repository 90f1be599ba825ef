package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// TestTokenFreshness: getTaskResult answers a solved token's expiresAt (Unix seconds), and a
// token whose first read, by getTaskResult or res.php, comes after it expired is counted once in
// solvequeue_gateway_tokens_expired_total; a token read fresh, or read again, is not.
func TestTokenFreshness(t *testing.T) {
	t.Parallel()
	solvedAt := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	expiresAt := solvedAt.Add(120 * time.Second)
	clock := &testClock{now: solvedAt}

	srv := enqueuetest.Redis(t)
	rc, err := redisconn.Open(context.Background(), srv.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc, Shared: true})
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Metrics: gateway.NewMetrics(reg),
		Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
	require.NoError(t, err)
	b := &testBundle{rc: rc, client: client, handler: h, reg: reg, url: startHTTP(t, h)}

	// A worker that solves every job as a token solved at solvedAt, or an image's text.
	w := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{enqueue.DefaultQueue: 1},
		Concurrency: 2, LogLevel: asynq.FatalLevel, TaskCheckInterval: 50 * time.Millisecond})
	require.NoError(t, w.Start(asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
		p, err := jobwire.DecodePayload(task.Payload())
		if err != nil {
			return err
		}
		rec := jobwire.Record{State: enqueue.StateSolved, Attempts: 1, CreateTasks: 1, FinishedAt: solvedAt,
			ExpiresAt: jobwire.TokenExpiresAt(p.TaskType(), solvedAt), Solution: json.RawMessage(`{"gRecaptchaResponse":"03AG"}`)}
		data, _ := json.Marshal(rec)
		_, err = task.ResultWriter().Write(data)
		return err
	})))
	t.Cleanup(w.Shutdown)

	const key = "any-key"
	n, err := testutil.GatherAndCount(reg, "solvequeue_gateway_tokens_expired_total")
	require.NoError(t, err)
	require.Equal(t, 2, n, "the key's series start at 0, for getTaskResult and res.php")
	expired := func(method string) float64 {
		return testutil.ToFloat64(counterOf(t, reg, "solvequeue_gateway_tokens_expired_total", map[string]string{"method": method, "key": gateway.LocalKeyName}))
	}
	// solved submits a job through createTask and waits for its outcome without reading it
	// through the gateway.
	solved := func(task map[string]any) int64 {
		id := taskID(t, b.call(t, gateway.MethodCreateTask, create(key, task)))
		jobID, err := h.JobID(context.Background(), gateway.LocalKeyName, id)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err = client.WaitIn(ctx, enqueue.DefaultQueue, jobID)
		require.NoError(t, err)
		return id
	}
	result := func(id int64) map[string]any {
		return b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": key, "taskId": id})
	}

	// Read fresh, then again after expiry: never counted.
	clock.Set(solvedAt)
	fresh := solved(recaptchaTask("solve"))
	a := result(fresh)
	require.Equal(t, gateway.StatusReady, a["status"])
	require.Equal(t, json.Number(fmt.Sprint(expiresAt.Unix())), a["expiresAt"], "%v", a)
	clock.Set(expiresAt.Add(time.Minute))
	result(fresh)
	require.Zero(t, expired(gateway.MethodGetTaskResult))

	// First read after expiry: counted once, however often it is read.
	stale := solved(recaptchaTask("solve"))
	require.Equal(t, json.Number(fmt.Sprint(expiresAt.Unix())), result(stale)["expiresAt"])
	require.Equal(t, 1.0, expired(gateway.MethodGetTaskResult))
	result(stale)
	require.Equal(t, 1.0, expired(gateway.MethodGetTaskResult))

	// At the instant of expiry the token is expired.
	clock.Set(expiresAt)
	result(solved(recaptchaTask("solve")))
	require.Equal(t, 2.0, expired(gateway.MethodGetTaskResult))

	// An image's text has no expiry: nothing answered, nothing counted.
	clock.Set(expiresAt.Add(time.Hour))
	img := result(solved(map[string]any{"type": "ImageToTextTask", "body": "iVBORw0KGgo="}))
	require.NotContains(t, img, "expiresAt")
	require.Equal(t, 2.0, expired(gateway.MethodGetTaskResult))

	// 2captcha's res.php counts the same way, under its own method label.
	tcStale := solved(map[string]any{"type": "TurnstileTaskProxyless", "websiteURL": "https://a.example", "websiteKey": "0x4AAA"})
	clock.Set(solvedAt.Add(299 * time.Second))
	get := url.Values{"key": {key}, "action": {"get"}, "id": {fmt.Sprint(tcStale)}}
	require.True(t, strings.HasPrefix(b.tcCall(t, viaGET, gateway.PathRes, get, nil), "OK|"))
	require.Zero(t, expired(gateway.PathRes), "a Turnstile token lives 300 s")
	tcLate := solved(map[string]any{"type": "TurnstileTaskProxyless", "websiteURL": "https://a.example", "websiteKey": "0x4AAA"})
	clock.Set(solvedAt.Add(300 * time.Second))
	get.Set("id", fmt.Sprint(tcLate))
	b.tcCall(t, viaGET, gateway.PathRes, get, nil)
	b.tcCall(t, viaGET, gateway.PathRes, get, nil)
	require.Equal(t, 1.0, expired(gateway.PathRes))
	require.Equal(t, 2.0, expired(gateway.MethodGetTaskResult))
}
