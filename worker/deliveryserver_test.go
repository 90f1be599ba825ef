package worker_test

import (
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// TestDeliveriesAreFetchedApartFromJobs: the worker's job fetches never look at the callback
// queue (asynq tries a server's queues one Redis round trip each, so a delivery queue beside the
// job queues cost most job fetches a round trip more); a second asynq server in the worker
// serves it alone, with a concurrency of its own, and stops with the worker.
func TestDeliveriesAreFetchedApartFromJobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name            string
		concurrency     int
		wantDeliveryCap int
	}{
		{"small worker", 8, 8},
		{"large worker", 1000, 64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			rig := workertest.New(t, anysolvertest.Options{})
			_, stop := rig.Start(t, worker.Config{Queues: map[string]int{"high": 3, "low": 1}, Concurrency: tt.concurrency})
			inspector := asynq.NewInspectorFromRedisClient(rig.RC)
			var servers []*asynq.ServerInfo
			require.Eventually(t, func() bool {
				var err error
				servers, err = inspector.Servers()
				return err == nil && len(servers) == 2
			}, 10*time.Second, 20*time.Millisecond, "the worker's two asynq servers write their state at start")
			byQueues := map[int]*asynq.ServerInfo{}
			for _, s := range servers {
				byQueues[len(s.Queues)] = s
			}
			require.Equal(t, map[string]int{"high": 3, "low": 1}, byQueues[2].Queues, "the job server fetches the job queues only")
			require.Equal(t, tt.concurrency, byQueues[2].Concurrency)
			require.Equal(t, map[string]int{callback.Queue: 1}, byQueues[1].Queues, "deliveries have a server of their own")
			require.Equal(t, tt.wantDeliveryCap, byQueues[1].Concurrency)

			stop()
			servers, err := inspector.Servers()
			require.NoError(t, err)
			require.Empty(t, servers, "both servers stop with the worker")
		})
	}
}
