package redisserver_test

import (
	"fmt"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

func TestSentinelFailsOverToTheReplica(t *testing.T) {
	t.Parallel()
	g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{})
	ctx := t.Context()
	require.Equal(t, "redis-sentinel://"+g.Sentinel.Addr+"?master=solvequeue", g.URL())

	primary, err := g.PrimaryAddr(ctx)
	require.NoError(t, err)
	require.Equal(t, g.Primary.Addr, primary)

	c := redis.NewFailoverClient(&redis.FailoverOptions{MasterName: g.Master, SentinelAddrs: []string{g.Sentinel.Addr}})
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	// What the replica acknowledged survives the failover.
	require.Equal(t, int64(1), c.Do(ctx, "WAIT", 1, 5000).Val())

	require.NoError(t, g.Primary.Kill())
	promoted, err := g.WaitFailover(ctx, primary)
	require.NoError(t, err)
	require.Equal(t, g.Replicas[0].Addr, promoted)
	require.Equal(t, "v", c.Get(ctx, "k").Val(), "the client follows the failover by itself")
	require.NoError(t, c.Set(ctx, "k2", "v2", 0).Err())
}

func TestClusterSpreadsSlotsOverItsNodes(t *testing.T) {
	t.Parallel()
	cl := enqueuetest.Cluster(t, redisserver.ClusterOptions{})
	require.Len(t, cl.Nodes, 3)
	require.Equal(t, "redis-cluster://"+cl.Nodes[0].Addr+","+cl.Nodes[1].Addr+","+cl.Nodes[2].Addr, cl.URL())

	ctx := t.Context()
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs()})
	t.Cleanup(func() { _ = c.Close() })
	slots, err := c.ClusterSlots(ctx).Result()
	require.NoError(t, err)
	owners := map[string]bool{}
	covered := 0
	for _, s := range slots {
		owners[s.Nodes[0].Addr] = true
		covered += s.End - s.Start + 1
	}
	require.Len(t, owners, 3, "every node holds slots")
	require.Equal(t, 16384, covered)
	for i := range 50 {
		require.NoError(t, c.Set(ctx, fmt.Sprint("key-", i), i, 0).Err())
	}
	for i := range 50 {
		require.Equal(t, fmt.Sprint(i), c.Get(ctx, fmt.Sprint("key-", i)).Val())
	}

	queues, err := cl.SpreadQueues(ctx, "q-", 4)
	require.NoError(t, err)
	require.Len(t, queues, 4)
	onNode, onSlot := map[string]bool{}, map[int64]bool{}
	for _, q := range queues {
		slot := c.ClusterKeySlot(ctx, "asynq:{"+q+"}:pending").Val()
		onSlot[slot] = true
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) {
				onNode[s.Nodes[0].Addr] = true
			}
		}
	}
	require.Len(t, onSlot, 4, "each queue on a slot of its own")
	require.Len(t, onNode, 3, "the queues cover every node")
}
