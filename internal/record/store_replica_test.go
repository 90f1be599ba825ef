package record

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/redisserver"
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

	st := New(pc)
	require.NoError(t, pc.HSet(ctx, keys.AsynqTask("default", "job-1"), "msg", "x").Err())
	rec := jobwire.Record{State: enqueue.StateActive, CreateTasks: 1, Remote: &jobwire.Remote{TaskID: json.RawMessage(`42`)}}
	require.NoError(t, st.SaveAcked(ctx, "default", "job-1", &rec))
	require.Equal(t, 1, waitCalls(t, pc), "one WAIT after the write")
	got, err := rc.HGet(ctx, keys.AsynqTask("default", "job-1"), "result").Result()
	require.NoError(t, err)
	require.Contains(t, got, `"taskId":42`, "the replica has the remote id")

	// The account breaker's trip and resume wait for the replica too, on the connection that
	// wrote them: the replica holds the open breaker and its pause when trip returns.
	require.NoError(t, pc.SAdd(ctx, keys.Queues, "default").Err())
	b := breaker.New(breaker.Params{Redis: pc, Queues: []string{"default"},
		Log: slog.New(slog.DiscardHandler), Observer: metrics.NopObserver{}, Now: time.Now})
	waits := waitCalls(t, pc)
	opened, err := b.Trip(ctx, "ERROR_ZERO_BALANCE", "no funds")
	require.NoError(t, err)
	require.True(t, opened.Opened)
	require.Equal(t, waits+1, waitCalls(t, pc), "one WAIT after the trip")
	require.Equal(t, int64(1), rc.Exists(ctx, keys.Breaker).Val(), "the replica holds the open breaker")
	require.Equal(t, int64(1), rc.Exists(ctx, keys.BreakerPaused("default")).Val(), "and its pause")
	state, err := breaker.Read(ctx, pc)
	require.NoError(t, err)
	b.Resume(ctx, state)
	require.Equal(t, waits+2, waitCalls(t, pc), "one WAIT after the resume")
	require.Zero(t, rc.Exists(ctx, keys.Breaker, keys.BreakerPaused("default")).Val(), "the replica holds the resume")

	// A primary without replicas: no WAIT, which would only time out.
	lone := enqueuetest.Redis(t)
	lc := redis.NewClient(&redis.Options{Addr: lone.Addr})
	t.Cleanup(func() { _ = lc.Close() })
	require.NoError(t, lc.HSet(ctx, keys.AsynqTask("default", "job-1"), "msg", "x").Err())
	require.NoError(t, New(lc).SaveAcked(ctx, "default", "job-1", &rec))
	require.Equal(t, 0, waitCalls(t, lc))
	got, err = lc.HGet(ctx, keys.AsynqTask("default", "job-1"), "result").Result()
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

// TestSaveAckedWaitsOnTheClusterPrimary: on a Redis Cluster whose primaries have replicas, the
// record's write and its WAIT go to the primary of the task's slot, on one connection, and that
// primary's replica holds the record when saveAcked returns.
func TestSaveAckedWaitsOnTheClusterPrimary(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cl := enqueuetest.Cluster(t, redisserver.ClusterOptions{Replicas: 1})
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = cc.Close() })
	key := keys.AsynqTask("default", "job-1")
	require.NoError(t, cc.HSet(ctx, key, "msg", "x").Err())
	primary, err := cc.MasterForKey(ctx, key)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		info, err := primary.Info(ctx, "replication").Result()
		return err == nil && strings.Contains(info, "connected_slaves:1") && strings.Contains(info, "state=online")
	}, 30*time.Second, 20*time.Millisecond, "the primary has its replica in sync (hang guard)")
	before := waitCalls(t, primary)

	rec := jobwire.Record{State: enqueue.StateActive, CreateTasks: 1, Remote: &jobwire.Remote{TaskID: json.RawMessage(`42`)}}
	require.NoError(t, New(cc).SaveAcked(ctx, "default", "job-1", &rec))
	require.Equal(t, before+1, waitCalls(t, primary), "one WAIT on the slot's primary after the write")

	replicaAddr := ""
	info, err := primary.Info(ctx, "replication").Result()
	require.NoError(t, err)
	for line := range strings.Lines(info) {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "slave0:"); ok {
			var ip, port string
			for _, kv := range strings.Split(rest, ",") {
				k, v, _ := strings.Cut(kv, "=")
				switch k {
				case "ip":
					ip = v
				case "port":
					port = v
				}
			}
			replicaAddr = net.JoinHostPort(ip, port)
		}
	}
	require.NotEmpty(t, replicaAddr, info)
	rc := redis.NewClient(&redis.Options{Addr: replicaAddr, PoolSize: 1})
	t.Cleanup(func() { _ = rc.Close() })
	require.NoError(t, rc.Do(ctx, "READONLY").Err())
	got, err := rc.HGet(ctx, key, "result").Result()
	require.NoError(t, err)
	require.Contains(t, got, `"taskId":42`, "the replica has the remote id")
}
