package worker_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http/httptest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// Example runs a worker against a Redis and AnySolver (here an in-memory Redis and the fake
// AnySolver), submits one job with the producer's client and waits for its outcome.
func Example() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()
	fake := anysolvertest.New(anysolvertest.Options{APIKeys: []string{"sk-example"}})
	srv := httptest.NewServer(fake)
	defer srv.Close()

	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: "sk-example"})
	if err != nil {
		log.Fatal(err)
	}
	w, err := worker.New(worker.Config{Redis: rc, AnySolver: as,
		Poll:   worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer func() { _ = w.Shutdown(ctx) }()

	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		log.Fatal(err)
	}
	id, err := client.Submit(ctx, enqueue.Job{Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
		"websiteURL": "https://shop.example/login", "websiteKey": "6Le-site-key"}})
	if err != nil {
		log.Fatal(err)
	}
	out, err := client.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(out.State, out.CreateTasks)
	// Output: solved 1
}

// ExampleConfig_WithDefaults shows what a Config left empty becomes.
func ExampleConfig_WithDefaults() {
	cfg := worker.Config{}.WithDefaults()
	fmt.Println("queues:", cfg.Queues["critical"], cfg.Queues["default"], cfg.Queues["low"])
	fmt.Println("concurrency:", cfg.Concurrency)
	fmt.Println("poll interval:", cfg.Poll.Interval, "adaptive:", !cfg.Poll.Fixed)
	fmt.Println("breaker probes:", cfg.Breaker.ProbeMin, "to", cfg.Breaker.ProbeMax)
	// Output:
	// queues: 6 3 1
	// concurrency: 1000
	// poll interval: 3s adaptive: true
	// breaker probes: 3s to 30s
}
