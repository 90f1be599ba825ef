package anysolver

import (
	"context"
	"testing"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

func BenchmarkParseAnswer(b *testing.B) {
	body := []byte(`{"errorId":0,"status":"ready","solution":{"gRecaptchaResponse":"03AFcWeA6k1Jx9Zq-fake-token-0123456789abcdef","token":"03AFcWeA6k1Jx9Zq-fake-token-0123456789abcdef","userAgent":"Mozilla/5.0"},"cost":"0.0025","createTime":1700000000,"endTime":1700000007}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseAnswer(body, classify.CallGetTaskResult, 200, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateAndPoll is one createTask and one getTaskResult (ready at once) over loopback
// HTTP against the fake: the client's and the fake's cost per solved task.
func BenchmarkCreateAndPoll(b *testing.B) {
	fake, ts := anysolvertest.NewServer(anysolvertest.Options{Balance: 1e12, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{}
	}})
	defer ts.Close()
	defer fake.Close()
	c, err := New(Config{BaseURL: ts.URL, APIKey: "bench-key"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.CloseIdleConnections()
	req := CreateTaskRequest{Task: map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://example.com", "websiteKey": "6Le-bench"}}
	run := func(ctx context.Context) {
		created, err := c.CreateTask(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		res, err := c.GetTaskResult(ctx, created.TaskID)
		if err != nil || res.Status != StatusReady {
			b.Fatal(res.Status, err)
		}
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			run(context.Background())
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				run(context.Background())
			}
		})
	})
}
