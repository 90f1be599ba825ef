package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// TestGatewayWarnsOfUnservedKeys runs `solvequeue gateway` with a key whose queue a worker serves
// and one whose queue none does: the start's log names the second key and its queue (never the
// first), and so does /readyz, which stays ready.
func TestGatewayWarnsOfUnservedKeys(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	srv := asynq.NewServerFromRedisClient(rc, asynq.Config{Queues: map[string]int{"busy": 1}, LogLevel: asynq.FatalLevel})
	require.NoError(t, srv.Start(asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })))
	t.Cleanup(srv.Shutdown)
	require.Eventually(t, func() bool {
		servers, err := asynq.NewInspectorFromRedisClient(rc).Servers()
		return err == nil && len(servers) == 1
	}, hangGuard, 20*time.Millisecond, "the worker announces itself")

	keys := cliWriteFile(t, "keys.yaml", "keys:\n"+
		"  - {name: served, key: gk-served-7c1d9e04b2a35f68, queue: busy}\n"+
		"  - {name: idle, key: gk-idle-4e2b8d61f0c9a735, queue: nobody, lifetime: 2m}\n")
	addr, httpAddr := freeLoopbackAddr(t), freeLoopbackAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	logs := &enqueuetest.LogBuffer{}
	done := make(chan int, 1)
	go func() {
		env := &Env{Stdin: bytes.NewReader(nil), Stdout: logs, Stderr: logs,
			Getenv: func(k string) string { return map[string]string{"REDIS_URL": url}[k] }}
		done <- run(ctx, env, []string{"gateway", "--addr", addr, "--keys", keys, "--http", httpAddr, "--log-format", "text"})
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "serving metrics and the console") },
		hangGuard, 20*time.Millisecond, "the gateway did not start:\n%s", logs.String())
	warned := scanLines(logs.String(), "no worker serves this key's queue")
	require.Len(t, warned, 1, logs.String())
	require.Contains(t, warned[0], "key=idle")
	require.Contains(t, warned[0], "queue=nobody")
	require.Contains(t, warned[0], "lifetime=2m0s")

	resp, err := http.Get("http://" + httpAddr + "/readyz")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "a key nobody serves is a warning, not unreadiness")
	var ready struct {
		Ready    bool     `json:"ready"`
		Warnings []string `json:"warnings"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ready))
	require.True(t, ready.Ready)
	require.Equal(t, []string{"key idle: no worker serves its queue nobody; its jobs wait and end JOB_EXPIRED after the key's lifetime (2m0s)"}, ready.Warnings)
}
