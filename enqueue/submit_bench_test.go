package enqueue_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// benchRedis runs fn against miniredis (whose Lua runs in gopher-lua and dominates ns/op and
// allocations) and, where it is installed, a real redis-server.
func benchRedis(b *testing.B, fn func(b *testing.B, c *enqueue.Client)) {
	b.Run("miniredis", func(b *testing.B) {
		fn(b, benchClient(b, miniredis.RunT(b).Addr()))
	})
	b.Run("redis-server", func(b *testing.B) {
		if _, err := exec.LookPath("redis-server"); err != nil {
			b.Skip("redis-server is not installed")
		}
		fn(b, benchClient(b, enqueuetest.Redis(b).Addr))
	})
}

func benchClient(b *testing.B, addr string) *enqueue.Client {
	rc := redis.NewClient(&redis.Options{Addr: addr, PoolSize: enqueue.SubmitConcurrencyDefault + 8})
	b.Cleanup(func() { rc.Close() })
	c, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkSubmit is one job submitted at a time: validation, the payload, asynq's enqueue,
// one Redis round trip.
func BenchmarkSubmit(b *testing.B) {
	benchRedis(b, func(b *testing.B, c *enqueue.Client) {
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := c.SubmitJob(ctx, recaptchaJob(fmt.Sprintf("bench-%d", i))); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSubmitMany is the batch path per job: SubmitMany's concurrent enqueues sharing
// pipelined round trips. Compare its ns/op with BenchmarkSubmit's.
func BenchmarkSubmitMany(b *testing.B) {
	benchRedis(b, func(b *testing.B, c *enqueue.Client) {
		jobs := make([]enqueue.Job, b.N)
		for i := range jobs {
			jobs[i] = recaptchaJob(fmt.Sprintf("bench-%d", i))
		}
		b.ReportAllocs()
		b.ResetTimer()
		results, err := c.SubmitMany(context.Background(), jobs, 0, nil)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range results {
			if r.Err != nil {
				b.Fatal(r.Err)
			}
		}
	})
}
