package worker_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// TestFairShareLetsAQuietKeyPastANoisyBurst: on one worker of concurrency C, a noisy gateway key
// enqueues 4C slow jobs, then a quiet key one job on the same queue, behind all of them. asynq's
// queue is FIFO and a polling job holds its slot, so without a fair share the quiet job's
// createTask is the (4C+1)-th to reach AnySolver. With it, the noisy key is held to the slots
// below the reserve line, the reserve slot hands the noisy jobs at the head of the queue back
// unpaid until the fetcher reaches the quiet job, and its createTask is among the first 2C: the
// proof is the order of createTask calls at the fake, not a clock. Every held job still ends
// solved, paid once, without a retry spent, and the holds are counted by key name.
func TestFairShareLetsAQuietKeyPastANoisyBurst(t *testing.T) {
	t.Parallel()
	const concurrency = 8
	var (
		mu     sync.Mutex
		order  []string // the websiteKey of each createTask, in the order they reached the fake
		noisyN = 4 * concurrency
	)
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{testAPIKey}, Script: func(task anysolvertest.Task) anysolvertest.Behavior {
		mu.Lock()
		order = append(order, task.Key)
		mu.Unlock()
		return anysolvertest.Behavior{SolveTime: 2 * time.Second}
	}})
	// The gateway records each key name that submits (keys.GatewayKeyNames); with two, every
	// worker keeps its reserve from its start. A single tenant is never held (internal/fairshare).
	require.NoError(t, rig.RC.SAdd(context.Background(), keys.GatewayKeyNames, "noisy", "quiet").Err())
	reg := prometheus.NewRegistry()
	rig.Start(t, worker.Config{Queues: map[string]int{"default": 1}, Concurrency: concurrency, ShutdownTimeout: time.Second,
		Poll: worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond}, Observer: worker.NewMetrics(reg)})

	ctx := context.Background()
	producer, err := enqueue.NewClient(enqueue.Config{Redis: rig.RC})
	require.NoError(t, err)
	submit := func(key, id string) {
		_, err := producer.Submit(ctx, enqueue.Job{ID: id, KeyName: key, Task: map[string]any{
			"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": id}})
		require.NoError(t, err)
	}
	var ids []string
	for i := range noisyN {
		ids = append(ids, fmt.Sprintf("noisy-%d", i))
		submit("noisy", ids[i])
	}
	submit("quiet", "quiet-0")
	ids = append(ids, "quiet-0")

	waitCtx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for _, id := range ids {
		out, err := producer.Wait(waitCtx, id)
		require.NoError(t, err, "job %s did not end", id)
		require.Equal(t, enqueue.StateSolved, out.State, "job %s: %+v", id, out.Error)
		require.Equal(t, 1, out.CreateTasks, "job %s: a held job is not paid while held", id)
		require.Zero(t, out.Retries, "job %s: a hold spends no retry", id)
	}

	mu.Lock()
	at := slices.Index(order, "quiet-0")
	mu.Unlock()
	require.GreaterOrEqual(t, at, 0, "the quiet job's createTask reached the fake")
	require.Less(t, at, 2*concurrency,
		"the quiet job's createTask is among the first 2C, not behind the noisy key's %d (position %d)", noisyN, at+1)
	require.Equal(t, noisyN+1, rig.Fake.Calls("createTask"), "one createTask per job: holds pay nothing")

	holds := func(key string) float64 {
		c, err := reg.Gather()
		require.NoError(t, err)
		for _, mf := range c {
			if mf.GetName() != "solvequeue_fair_share_holds_total" {
				continue
			}
			for _, m := range mf.GetMetric() {
				if m.GetLabel()[0].GetValue() == key {
					return m.GetCounter().GetValue()
				}
			}
		}
		return 0
	}
	require.Positive(t, holds("noisy"), "the noisy key's jobs were held")
	require.Zero(t, holds("quiet"), "a key below its share is never held")
}
