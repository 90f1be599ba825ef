package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// metricValue reads one sample of the Prometheus text exposition: name{labels} value, with
// the labels in the exposition's (sorted) order.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(text)
	require.NotNil(t, m, "no sample %s in /metrics", series)
	v, err := strconv.ParseFloat(m[1], 64)
	require.NoError(t, err)
	return v
}

// TestOperateAfterARun runs real jobs through a worker with metrics on and checks what an
// operator sees: counts on /metrics, the queue and the redacted jobs in the web UI's API, and no
// secret anywhere (metrics, UI, logs).
func TestOperateAfterARun(t *testing.T) {
	t.Parallel()
	const apiKey = "sk-operate-5e0c9a1b7d"
	const fieldPass, urlPass = "f1eldPassw0rd", "ur1Passw0rd"
	ctx := context.Background()
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{apiKey},
		Script: anysolvertest.DirectiveScript(nil)})
	rc, fake := rig.RC, rig.Fake
	policy, err := policyfile.Parse("fast.yaml", []byte("retry: {maxRetries: 3, baseDelay: 100ms, maxDelay: 200ms}\n"))
	require.NoError(t, err)
	reg := prometheus.NewRegistry()
	logs := &enqueuetest.LogBuffer{}
	rig.Start(t, worker.Config{Policy: policy, Queues: map[string]int{"default": 1},
		Concurrency: 20, Observer: worker.NewMetrics(reg), Poll: worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond},
		Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

	jobs := []struct {
		id, key string
		extra   map[string]any
	}{
		{"op-solved-1", "sq:id=op1;solve=200ms", nil},
		{"op-solved-2", "sq:id=op2;solve=200ms", map[string]any{"proxyType": "http", "proxyAddress": "10.1.2.3", "proxyPort": 3128, "proxyLogin": "u", "proxyPassword": fieldPass}},
		{"op-solved-3", "sq:id=op3;solve=200ms", map[string]any{"proxy": "http://u:" + urlPass + "@10.1.2.3:3128"}},
		{"op-retried", "sq:id=op4;create=SERVICE_UNAVAILABLE*1;solve=200ms", nil},
		{"op-failed", "sq:id=op5;create=DOMAIN_BANNED*9", nil},
		{"op-dead", "sq:id=op6;create=UNKNOWN_PROVIDER_ERROR*9", nil},
	}
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute) // a hang guard
	defer cancel()
	for _, j := range jobs {
		task := map[string]any{"type": "RecaptchaV2Task", "websiteURL": "https://shop.example", "websiteKey": j.key}
		for k, v := range j.extra {
			task[k] = v
		}
		_, err := client.Submit(waitCtx, enqueue.Job{ID: j.id, Task: task})
		require.NoError(t, err)
	}
	for _, j := range jobs {
		_, err := client.Wait(waitCtx, j.id)
		require.NoError(t, err)
	}

	s := serve(t, Config{Addr: "127.0.0.1:0", Redis: rc, Registry: reg})
	code, _, metrics := get(t, s.URL+"/metrics", "", "")
	require.Equal(t, 200, code)
	require.Equal(t, 4.0, metricValue(t, metrics, `solvequeue_jobs_ended_total{code="",queue="default",state="solved"}`))
	require.Equal(t, 1.0, metricValue(t, metrics, `solvequeue_jobs_ended_total{code="DOMAIN_BANNED",queue="default",state="failed"}`))
	require.Equal(t, 1.0, metricValue(t, metrics, `solvequeue_jobs_ended_total{code="UNKNOWN_PROVIDER_ERROR",queue="default",state="dead"}`))
	require.Equal(t, 1.0, metricValue(t, metrics, `solvequeue_attempts_rescheduled_total{code="SERVICE_UNAVAILABLE",decision="retry"}`))
	require.Equal(t, 1.0, metricValue(t, metrics, `solvequeue_dead_letters`))
	require.Equal(t, float64(fake.Calls("createTask")), metricValue(t, metrics, `solvequeue_anysolver_calls_total{method="createTask",outcome="ok"}`)+
		metricValue(t, metrics, `solvequeue_anysolver_calls_total{method="createTask",outcome="SERVICE_UNAVAILABLE"}`)+
		metricValue(t, metrics, `solvequeue_anysolver_calls_total{method="createTask",outcome="DOMAIN_BANNED"}`)+
		metricValue(t, metrics, `solvequeue_anysolver_calls_total{method="createTask",outcome="UNKNOWN_PROVIDER_ERROR"}`))
	require.Regexp(t, `(?m)^asynq_tasks_enqueued_total\{queue="default",state="completed"\} 5$`, metrics)
	require.Regexp(t, `(?m)^asynq_tasks_enqueued_total\{queue="default",state="archived"\} 1$`, metrics)

	code, _, queues := get(t, s.URL+"/monitoring/api/queues", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, queues, `"queue":"default"`)
	code, _, completed := get(t, s.URL+"/monitoring/api/queues/default/completed_tasks", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, completed, "op-solved-2")
	require.Contains(t, completed, redact.Marker)
	_, _, archived := get(t, s.URL+"/monitoring/api/queues/default/archived_tasks", "", "")
	require.Contains(t, archived, "op-dead")

	// asynqmon shows each payload headed by the job's full ID and solvequeue's state (its ID
	// column cuts "op-failed" to "op", and files a failed job under Completed).
	payloads := func(body string) map[string]string {
		var list struct {
			Tasks []struct{ ID, Payload string }
		}
		require.NoError(t, json.Unmarshal([]byte(body), &list))
		out := map[string]string{}
		for _, task := range list.Tasks {
			out[task.ID] = task.Payload
		}
		return out
	}
	done := payloads(completed)
	require.True(t, strings.HasPrefix(done["op-failed"], "{\n  \"id\": \"op-failed\",\n  \"state\": \"failed\",\n  \"code\": \"DOMAIN_BANNED\",\n  \"payload\": {"), done["op-failed"])
	require.True(t, strings.HasPrefix(done["op-solved-2"], "{\n  \"id\": \"op-solved-2\",\n  \"state\": \"solved\",\n  \"payload\": {"), done["op-solved-2"])
	require.Contains(t, done["op-solved-2"], redact.Marker)
	require.True(t, strings.HasPrefix(payloads(archived)["op-dead"], "{\n  \"id\": \"op-dead\",\n  \"state\": \"dead\""), payloads(archived)["op-dead"])
	code, _, one := get(t, s.URL+"/monitoring/api/queues/default/tasks/op-failed", "", "")
	require.Equal(t, 200, code)
	require.Contains(t, one, `"payload":"{\n  \"id\": \"op-failed\",\n  \"state\": \"failed\"`)

	for where, body := range map[string]string{"/metrics": metrics, "UI completed": completed, "UI archived": archived, "UI queues": queues, "UI task": one, "logs": logs.String()} {
		for _, secret := range []string{apiKey, fieldPass, urlPass} {
			require.NotContains(t, body, secret, fmt.Sprintf("%s shows a secret", where))
		}
	}
	require.Contains(t, logs.String(), `"msg":"job ended"`)
}
