package ledger_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// scriptRuns counts the scripts a Redis client runs.
type scriptRuns struct{ n atomic.Int64 }

func (s *scriptRuns) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *scriptRuns) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (s *scriptRuns) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n := cmd.Name(); n == "evalsha" || n == "eval" {
			s.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

// TestThreeProcessesNeverPassTheCap races three worker processes' ledgers (each its own Ledger
// and Redis client on one real redis-server), each with thirty attempts at once, as the worker's
// handler does them: reserve, createTask at the fake AnySolver over HTTP only if the ledger
// said yes, settle with the cost AnySolver reported. The createTasks the fake counts are exactly
// the count cap (and, on the money cap, exactly what the money allows at the reported cost),
// whatever the interleaving; and the processes ran fewer scripts than they made calls, since
// calls made at once share a run.
func TestThreeProcessesNeverPassTheCap(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		budget policyfile.Budget
		want   int // createTasks the budget lets through
	}{
		// Every createTask is reserved and settled at 0.001: 40 by count.
		{"count", policyfile.Budget{Window: time.Hour, MaxCreateTasks: 40, MaxCost: 1, EstimatedCost: 0.001}, 40},
		// 0.030 at 0.001 each (the estimate is the reported cost): 30 by money.
		{"money", policyfile.Budget{Window: time.Hour, MaxCost: 0.03, EstimatedCost: 0.001}, 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := enqueuetest.Redis(t)
			var creates atomic.Int64
			fake := anysolvertest.New(anysolvertest.Options{Cost: 0.001,
				Script: func(anysolvertest.Task) anysolvertest.Behavior { return anysolvertest.Behavior{Immediate: true} }})
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/createTask") {
					creates.Add(1)
				}
				fake.ServeHTTP(w, r)
			}))
			t.Cleanup(as.Close)

			ctx := context.Background()
			const processes, attempts = 3, 30
			var calls atomic.Int64
			var granted atomic.Int64
			runs := &scriptRuns{}
			var wg sync.WaitGroup
			for range processes {
				rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
				rc.AddHook(runs)
				t.Cleanup(func() { rc.Close() })
				l := ledger.New(rc)
				client, err := anysolver.New(anysolver.Config{BaseURL: as.URL, APIKey: "k"})
				require.NoError(t, err)
				for range attempts {
					wg.Go(func() {
						calls.Add(1)
						r, ok, _, err := l.Reserve(ctx, "shared", tt.budget, "TurnstileToken")
						if err != nil || !ok {
							if err != nil {
								t.Error(err)
							}
							return
						}
						granted.Add(1)
						res, err := client.CreateTask(ctx, anysolver.CreateTaskRequest{Task: map[string]any{"type": "TurnstileToken"}})
						if err != nil {
							t.Error(err)
							return
						}
						calls.Add(1)
						if _, err := l.Settle(ctx, "shared", r, res.Cost); err != nil {
							t.Error(err)
						}
					})
				}
			}
			wg.Wait()
			require.Equal(t, int64(tt.want), creates.Load(), "createTasks that reached AnySolver")
			require.Equal(t, int64(tt.want), granted.Load())
			require.Less(t, runs.n.Load(), calls.Load(), "calls made at once shared script runs")

			rc := redis.NewClient(&redis.Options{Addr: srv.Addr})
			t.Cleanup(func() { rc.Close() })
			u, err := ledger.New(rc).Read(ctx, "shared", tt.budget)
			require.NoError(t, err)
			require.Equal(t, int64(tt.want), u.CreateTasks)
			require.InDelta(t, 0.001*float64(tt.want), u.Cost, 1e-9, "settled at the reported cost")
			require.False(t, u.Room)
		})
	}
}
