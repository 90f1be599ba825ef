package enqueue_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
)

// A Go producer submits a job and, later, reads its outcome by ID. Here an in-process Redis
// stands in for yours; in production connect with go-redis, e.g.
//
//	opt, err := redis.ParseURL(os.Getenv("REDIS_URL"))
//	rc := redis.NewClient(opt)
//
// and wait for the outcome with client.Wait(ctx, id) while a `solvequeue worker` runs.
func Example() {
	ctx := context.Background()
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()

	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		log.Fatal(err)
	}
	job := enqueue.Job{
		ID:       "order-42", // an idempotency key: submitting it again never makes a second job
		Deadline: "10m",      // no new AnySolver task after ten minutes
		Task: map[string]any{
			"type":       "RecaptchaV2TaskProxyless",
			"websiteURL": "https://shop.example/login",
			"websiteKey": "6Le-wvkSAAAAAPBMRTvw0Q4Muexq9bi0DJwx_mJ-",
		},
	}
	id, err := client.Submit(ctx, job)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("submitted", id)

	again, err := client.SubmitJob(ctx, job)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("submitted again; the job existed:", again.Existing)

	out, err := client.Status(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("state:", out.State)
	// Output:
	// submitted order-42
	// submitted again; the job existed: true
	// state: pending
}

// Validate names the field that is wrong, before anything reaches Redis.
func ExampleJob_Validate() {
	job := enqueue.Job{Task: map[string]any{
		"type":       "HCaptchaTaskProxyless",
		"websiteURL": "https://shop.example/login",
	}}
	fmt.Println(job.Validate())

	job.Task["websiteKey"] = "a5f74b19-9e45-40e0-b45d-47ff91b7a6c2"
	fmt.Println(job.Validate())
	// Output:
	// task.websiteKey: is required for HCaptchaTaskProxyless and must be a non-empty string
	// <nil>
}

// Submit refuses a job that cannot succeed before anything reaches Redis; the error is a
// *ValidationError naming the field.
func ExampleValidationError() {
	mr, err := miniredis.Run()
	if err != nil {
		log.Fatal(err)
	}
	defer mr.Close()
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	if err != nil {
		log.Fatal(err)
	}

	_, err = client.Submit(context.Background(), enqueue.Job{Queue: "bad queue", Task: map[string]any{"type": "ImageToTextTask", "body": "iVBORw0KGgo="}})
	var ve *enqueue.ValidationError
	if errors.As(err, &ve) {
		fmt.Println("field:", ve.Field)
	}
	fmt.Println("keys in Redis:", len(mr.Keys()))
	// Output:
	// field: queue
	// keys in Redis: 0
}

// ReadJobs checks a whole JSON-lines batch first and names every bad line.
func ExampleReadJobs() {
	file := `{"id":"a","task":{"type":"TurnstileToken","websiteURL":"https://a.example","websiteKey":"0x4A"}}
# a comment
{"id":"b","task":{"type":"ImageToTextTask"}}
{"id":"c","task":{"type":"TurnstileToken"},"retries":3}
`
	_, err := enqueue.ReadJobs(strings.NewReader(file))
	fmt.Println(err)
	// Output:
	// 2 bad line(s), nothing submitted:
	//   line 3: task.body: is required for ImageToTextTask and must be a non-empty string
	//   line 4: retries: is not a job field (want id, queue, provider, providers, settings, deadline, maxRetries, callbackUrl, task)
}
