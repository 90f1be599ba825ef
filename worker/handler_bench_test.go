package worker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// BenchmarkProcessTask is one attempt of a job whose solution is ready at the first poll, the
// handler's whole hot path: read the record, decode the job, createTask, record the remote id,
// getTaskResult, record the outcome, metrics. AnySolver is the fake over loopback HTTP; Redis is
// miniredis (whose Lua runs in gopher-lua and dominates ns/op and allocations there) or, where
// it is installed, a real redis-server. asynq's fetch and completion are not in it.
func BenchmarkProcessTask(b *testing.B) {
	b.Run("miniredis", func(b *testing.B) {
		mr := miniredis.RunT(b)
		benchmarkProcessTask(b, redis.NewClient(&redis.Options{Addr: mr.Addr()}))
	})
	b.Run("redis-server", func(b *testing.B) {
		if _, err := exec.LookPath("redis-server"); err != nil {
			b.Skip("redis-server is not installed")
		}
		srv := enqueuetest.Redis(b)
		benchmarkProcessTask(b, redis.NewClient(&redis.Options{Addr: srv.Addr}))
	})
}

func benchmarkProcessTask(b *testing.B, rc *redis.Client) {
	b.Cleanup(func() { rc.Close() })
	fake := anysolvertest.New(anysolvertest.Options{Balance: 1e12, Script: func(anysolvertest.Task) anysolvertest.Behavior {
		return anysolvertest.Behavior{}
	}})
	srv := httptest.NewServer(fake)
	b.Cleanup(srv.Close)
	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: testAPIKey})
	if err != nil {
		b.Fatal(err)
	}
	w, err := worker.New(worker.Config{Redis: rc, AnySolver: as, Queues: map[string]int{"default": 1},
		Poll:     worker.PollConfig{Fixed: true, Interval: time.Nanosecond}, // the first poll at once, as learned for this type
		Observer: worker.NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	payload := []byte(`{"v":1,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":"6Le-bench"},"submittedAt":"2026-01-02T15:04:05Z"}`)
	if _, err := jobwire.DecodePayload(payload); err != nil {
		b.Fatal(err)
	}
	h := w.Handler()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ProcessTask(ctx, asynq.NewTask(jobwire.TaskType, payload)); err != nil {
			b.Fatal(err)
		}
	}
	if st := fake.Stats(); st.Solved != st.Created {
		b.Fatalf("solved %d of %d", st.Solved, st.Created)
	}
}
