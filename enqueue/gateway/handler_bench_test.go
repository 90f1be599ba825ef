package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// BenchmarkHandler measures one request through the handler, the HTTP server aside, against a
// real redis-server; with -benchmem, its allocations (Submit's and StatusIn's included).
func BenchmarkHandler(b *testing.B) {
	srv := enqueuetest.Redis(b)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
	b.Cleanup(func() { rc.Close() })
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		b.Fatal(err)
	}
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Keys: mustKeys(b), Metrics: gateway.NewMetrics(prometheus.NewRegistry()),
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	create, _ := json.Marshal(map[string]any{"clientKey": alphaKey, "softId": 54,
		"task": map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": "6Le-abc"}})
	var id int64
	b.Run("createTask", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/createTask", bytes.NewReader(create)))
			var a gateway.Answer
			if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.TaskID == 0 {
				b.Fatalf("%s", rec.Body.String())
			}
			id = a.TaskID
		}
	})
	result := []byte(`{"clientKey":"` + alphaKey + `","taskId":` + strconv.FormatInt(id, 10) + `}`)
	b.Run("getTaskResult", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/getTaskResult", bytes.NewReader(result)))
		}
	})
	b.Run("Submit (the baseline)", func(b *testing.B) {
		b.ReportAllocs()
		job := enqueue.Job{Queue: "alpha", Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
			"websiteURL": "https://shop.example/login", "websiteKey": "6Le-abc"}}
		for b.Loop() {
			if _, err := client.Submit(context.Background(), job); err != nil {
				b.Fatal(err)
			}
		}
	})
}
