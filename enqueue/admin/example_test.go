package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// An operator lists the dead-letter queue and redrives a job once its cause is fixed. Here an
// in-process Redis stands in for yours, and the dead letter is written the way a worker writes
// one when a job dies.
func ExampleClient_DeadLetters() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()
	killJob(ctx, rc, "order-42", "ERROR_PROXY_CONNECT_REFUSED")

	ops, err := admin.NewClient(admin.Config{Redis: rc})
	if err != nil {
		log.Fatal(err)
	}
	letters, err := ops.DeadLetters(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range letters {
		fmt.Println(d.Queue, d.ID, d.Record.Error.ErrorCode)
	}

	if err := ops.Redrive(ctx, letters[0]); err != nil {
		log.Fatal(err)
	}
	letters, err = ops.DeadLetters(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("dead letters left:", len(letters))

	producer, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		log.Fatal(err)
	}
	out, err := producer.Status(ctx, "order-42")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("order-42 is", out.State)
	// Output:
	// default order-42 ERROR_PROXY_CONNECT_REFUSED
	// dead letters left: 0
	// order-42 is pending
}

// killJob writes the dead letter a worker writes when the job id dies with code.
func killJob(ctx context.Context, rc redis.UniversalClient, id, code string) {
	payload, err := json.Marshal(jobwire.Payload{V: jobwire.PayloadVersion, SubmittedAt: time.Now().UTC(),
		Task: map[string]any{"type": "RecaptchaV2Task", "websiteURL": "https://shop.example", "websiteKey": "6Le",
			"proxy": "http://user:secret@proxy.example:3128"}})
	if err != nil {
		log.Fatal(err)
	}
	d := admin.DeadLetter{ID: id, Queue: enqueue.DefaultQueue, Payload: payload, DeadAt: time.Now().UTC(),
		Record: jobwire.Record{State: jobwire.StateDead, Attempts: 3,
			Error: &jobwire.ErrorInfo{ErrorCode: code, Decision: "dead"}}}
	if err := deadletter.Put(ctx, rc, d, 0); err != nil {
		log.Fatal(err)
	}
}
