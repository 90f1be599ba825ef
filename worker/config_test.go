package worker_test

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// A worker refuses a queue whose name holds a brace: it would change the Redis Cluster hash tag
// of the queue's keys, asynq's and ours (asynq issue #480).
func TestWorkerRefusesQueueNamesWithBraces(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	t.Cleanup(func() { _ = rc.Close() })
	as, err := anysolver.New(anysolver.Config{BaseURL: "http://127.0.0.1:1", APIKey: testAPIKey})
	require.NoError(t, err)
	for _, q := range []string{"{default}", "a}b", "x{"} {
		_, err := worker.New(worker.Config{Redis: rc, AnySolver: as, Queues: map[string]int{q: 1}})
		require.ErrorContains(t, err, "queue name", q)
	}
}
