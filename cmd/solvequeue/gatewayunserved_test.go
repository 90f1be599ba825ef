package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
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
	logs := startGatewayInProcess(t, url, "serving metrics and the console", "--addr", addr, "--keys", keys, "--http", httpAddr)
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
