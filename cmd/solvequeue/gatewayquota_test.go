package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"
)

// TestGatewayQuotasAcrossTwoProcesses runs two `solvequeue gateway` processes on one Redis and
// sends a key's createTasks to them in turn: the key's quotas are kept in Redis, so the two
// processes together accept exactly what one would — a key with maxJobsWaiting 4 gets 4 jobs
// queued out of 10 (no worker takes them), and a key with a rate of one request per 1000 s gets
// exactly one through out of 6 (RATE_LIMITED, answered as the anti-captcha clients' own
// ERROR_NO_SLOT_AVAILABLE). Counted in the answers and in the queue, not timed.
func TestGatewayQuotasAcrossTwoProcesses(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	keysFile := filepath.Join(t.TempDir(), "keys.yaml")
	require.NoError(t, os.WriteFile(keysFile, []byte(`keys:
  - name: waiter
    key: gk-waiter-8c1d4e7f2a9b
    queue: tenants
    maxJobsWaiting: 4
  - name: limited
    key: gk-limited-3f6a0b5c9d2e
    queue: tenants
    rateLimit: 0.001
`), 0o600))
	addrs := []string{freeLoopbackAddr(t), freeLoopbackAddr(t)}
	for _, addr := range addrs {
		p := startProc(t, []string{"REDIS_URL=" + url}, "gateway", "--addr", addr, "--keys", keysFile)
		require.True(t, p.waitForLog("serving AnySolver's API", hangGuard), "the gateway did not start:\n%s", p.logs.String())
	}

	client := &http.Client{Timeout: 10 * time.Second}
	createTask := func(addr, key string, i int) string {
		body, err := json.Marshal(map[string]any{"clientKey": key, "task": map[string]any{
			"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": fmt.Sprintf("6Le-%d", i)}})
		require.NoError(t, err)
		resp, err := client.Post("http://"+addr+"/createTask", "application/json", bytes.NewReader(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var a struct {
			ErrorID          int    `json:"errorId"`
			ErrorCode        string `json:"errorCode"`
			ErrorDescription string `json:"errorDescription"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
		switch {
		case a.ErrorID == 0:
			return "ok"
		case strings.Contains(a.ErrorDescription, "rate limit"):
			return a.ErrorCode + " (rate limit)"
		}
		return a.ErrorCode
	}
	tally := func(key string, n int) map[string]int {
		got := map[string]int{}
		for i := range n {
			got[createTask(addrs[i%2], key, i)]++
		}
		return got
	}

	require.Equal(t, map[string]int{"ok": 4, "ERROR_NO_SLOT_AVAILABLE": 6}, tally("gk-waiter-8c1d4e7f2a9b", 10),
		"maxJobsWaiting 4 holds across both gateways")
	require.Equal(t, map[string]int{"ok": 1, "ERROR_NO_SLOT_AVAILABLE (rate limit)": 5}, tally("gk-limited-3f6a0b5c9d2e", 6),
		"one rate limit for both gateways")

	info, err := asynq.NewInspectorFromRedisClient(rc).GetQueueInfo("tenants")
	require.NoError(t, err)
	require.Equal(t, 5, info.Pending, "only the accepted jobs are queued")
}
