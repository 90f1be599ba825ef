package worker

import (
	"context"
	"encoding/json"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// TestSaveAckedWaitsForAReplica: the record of a paid remote task is written, where the primary
// has a replica, with a WAIT on the same connection (so a failover cannot lose it), and the
// replica holds it when saveAcked returns; without a replica it is a plain save.
func TestSaveAckedWaitsForAReplica(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	primary := enqueuetest.Redis(t)
	host, port, _ := net.SplitHostPort(primary.Addr)
	replica := enqueuetest.Redis(t, enqueuetest.RedisOptions{Args: []string{"--replicaof", host, port}})
	pc := redis.NewClient(&redis.Options{Addr: primary.Addr})
	rc := redis.NewClient(&redis.Options{Addr: replica.Addr})
	t.Cleanup(func() { _ = pc.Close(); _ = rc.Close() })
	require.Eventually(t, func() bool {
		info, err := rc.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	}, 10*time.Second, 20*time.Millisecond, "the replica syncs (hang guard)")

	st := newStore(pc)
	require.NoError(t, pc.HSet(ctx, taskKey("default", "job-1"), "msg", "x").Err())
	rec := enqueue.Record{State: enqueue.StateActive, CreateTasks: 1, Remote: &enqueue.Remote{TaskID: json.RawMessage(`42`)}}
	require.NoError(t, st.saveAcked(ctx, "default", "job-1", &rec))
	require.Equal(t, 1, waitCalls(t, pc), "one WAIT after the write")
	got, err := rc.HGet(ctx, taskKey("default", "job-1"), "result").Result()
	require.NoError(t, err)
	require.Contains(t, got, `"taskId":42`, "the replica has the remote id")

	// A primary without replicas: no WAIT, which would only time out.
	lone := enqueuetest.Redis(t)
	lc := redis.NewClient(&redis.Options{Addr: lone.Addr})
	t.Cleanup(func() { _ = lc.Close() })
	require.NoError(t, lc.HSet(ctx, taskKey("default", "job-1"), "msg", "x").Err())
	require.NoError(t, newStore(lc).saveAcked(ctx, "default", "job-1", &rec))
	require.Equal(t, 0, waitCalls(t, lc))
	got, err = lc.HGet(ctx, taskKey("default", "job-1"), "result").Result()
	require.NoError(t, err)
	require.Contains(t, got, `"taskId":42`)
}

// waitCalls reads how many WAIT commands the server ran (INFO commandstats).
func waitCalls(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_wait:calls="); ok {
			n := 0
			for _, r := range rest {
				if r < '0' || r > '9' {
					break
				}
				n = n*10 + int(r-'0')
			}
			return n
		}
	}
	return 0
}
