package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/worker/console"
)

const (
	busyKey = "gk-busy-6a0e3f9c21d84b57"
	idleKey = "gk-idle-b83c5e17d2a946f0"
)

// gatewayBundle is a real redis-server, a gateway with two keys (busy, whose queue a worker
// serves, and idle, whose queue none does) and the console on the same Redis.
type gatewayBundle struct {
	rc      redis.UniversalClient
	gateway string // the gateway's URL
	web     *session
	console string // the console's URL
}

func setupGateway(t *testing.T) *gatewayBundle {
	t.Helper()
	rc := redis.NewClient(&redis.Options{Addr: enqueuetest.Redis(t).Addr})
	t.Cleanup(func() { _ = rc.Close() })
	keys, err := gateway.ParseKeys("keys.yaml", []byte("keys:\n"+
		"  - {name: busy, key: "+busyKey+", queue: busy}\n"+
		"  - {name: idle, key: "+idleKey+", queue: nobody}\n"))
	require.NoError(t, err)
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc, Shared: true})
	require.NoError(t, err)
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Keys: keys, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	gw := httptest.NewServer(h)
	t.Cleanup(gw.Close)

	// A worker of the busy queue that takes nothing: it never runs a job, it only serves the queue.
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{"busy": 1}, LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	t.Cleanup(srv.Shutdown)

	ch, err := console.New(console.Config{Redis: rc, ReadOnly: true, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	cs := httptest.NewServer(ch)
	t.Cleanup(cs.Close)
	return &gatewayBundle{rc: rc, gateway: gw.URL, web: newSession(t, cs.URL, "", ""), console: cs.URL}
}

// createTask sends a createTask with key and returns the taskId.
func (b *gatewayBundle) createTask(t *testing.T, key string) int64 {
	t.Helper()
	body := fmt.Sprintf(`{"clientKey":%q,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":"6Le-x"}}`, key)
	resp, err := http.Post(b.gateway+"/createTask", "application/json", bytes.NewBufferString(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var a struct {
		ErrorID int   `json:"errorId"`
		TaskID  int64 `json:"taskId"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
	require.Zero(t, a.ErrorID)
	require.Positive(t, a.TaskID)
	return a.TaskID
}

// TestConsoleFindsAGatewayJobByTaskID: the taskId a gateway's client knows finds its job (as
// taskId=, from the search box, and from the lists' taskId=), and the job page shows its key's
// name and taskId; a taskId no gateway gave finds nothing.
func TestConsoleFindsAGatewayJobByTaskID(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	idle := b.createTask(t, idleKey)
	busy := b.createTask(t, busyKey)

	for _, tt := range []struct {
		path, key string
		taskID    int64
	}{
		{fmt.Sprintf("/console/job?taskId=%d", idle), "idle", idle},
		{fmt.Sprintf("/console/job?id=%d", idle), "idle", idle}, // the search box: an ID that is a number
		{fmt.Sprintf("/console/job?taskId=%d", busy), "busy", busy},
	} {
		status, body := b.web.get(tt.path)
		require.Equal(t, http.StatusOK, status, "%s: %s", tt.path, body)
		require.Contains(t, body, `<dd id="key-name">`+tt.key+`</dd>`, tt.path)
		require.Contains(t, body, fmt.Sprintf(`<dd id="task-id">%d</dd>`, tt.taskID), tt.path)
		require.Regexp(t, `<span id="job-id">`+gateway.JobIDPrefix+`[0-9a-f]{32}</span>`, body, tt.path)
	}

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(fmt.Sprintf("%s/console/jobs?taskId=%d", b.console, idle))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	require.Equal(t, fmt.Sprintf("/console/job?taskId=%d", idle), resp.Header.Get("Location"))

	status, body := b.web.get("/console/job?taskId=4503599627370495")
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, body, `id="not-found"`)
	status, body = b.web.get("/console/job?taskId=not-a-number")
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, body, `id="not-found"`)
}

// TestConsoleMarksUnservedQueues: the overview marks the queue no running worker serves, and only it.
func TestConsoleMarksUnservedQueues(t *testing.T) {
	t.Parallel()
	b := setupGateway(t)
	b.createTask(t, idleKey)
	b.createTask(t, busyKey)
	var body string
	require.Eventually(t, func() bool { // the worker announces itself when it starts
		_, body = b.web.get("/console/")
		return strings.Contains(body, "<b>nobody</b>") && strings.Contains(body, "<b>busy</b>") && strings.Count(body, ">unserved</span>") == 1
	}, 10*time.Second, 20*time.Millisecond, body)
	require.Regexp(t, `<b>nobody</b>(?: <span[^>]*>paused</span>)? <span class="badge bad unserved"`, body)
	require.NotRegexp(t, `<b>busy</b>[^<]*<span class="badge bad unserved"`, body)
}
