package redisconn_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

func TestParseSentinelURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want redis.FailoverOptions
	}{
		{"redis-sentinel://10.0.0.1:26379?master=mymaster",
			redis.FailoverOptions{MasterName: "mymaster", SentinelAddrs: []string{"10.0.0.1:26379"}}},
		{"redis-sentinel://:s3cret@s1:26379,s2:26380,s3?master=m",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"s1:26379", "s2:26380", "s3:26379"}, Password: "s3cret"}},
		{"redis-sentinel://app:pw@s1:1/3?master=m",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"s1:1"}, Username: "app", Password: "pw", DB: 3}},
		{"redis-sentinel://:pw@s1:1?master=m&sentinel_password=s%26pw",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"s1:1"}, Password: "pw", SentinelPassword: "s&pw"}},
		{"redis-sentinel://s1:1?sentinel_username=watch&sentinel_password=spw&master=m",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"s1:1"}, SentinelUsername: "watch", SentinelPassword: "spw"}},
		{"REDIS-SENTINEL://[::1]:26379?master=m",
			redis.FailoverOptions{MasterName: "m", SentinelAddrs: []string{"[::1]:26379"}}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := redisconn.ParseSentinelURL(tt.url)
			require.NoError(t, err)
			require.Equal(t, tt.want, *got)
		})
	}
}

func TestParseClusterURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want redis.ClusterOptions
	}{
		{"redis-cluster://n1:7000", redis.ClusterOptions{Addrs: []string{"n1:7000"}}},
		{"redis-cluster://user:p%40ss@n1:7000,n2:7001,n3/", redis.ClusterOptions{
			Addrs: []string{"n1:7000", "n2:7001", "n3:6379"}, Username: "user", Password: "p@ss"}},
		{"redis-cluster://n1:7000/0", redis.ClusterOptions{Addrs: []string{"n1:7000"}}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := redisconn.ParseClusterURL(tt.url)
			require.NoError(t, err)
			require.Equal(t, tt.want, *got)
		})
	}
}

// A bad URL of any scheme is refused before anything dials, saying what is wrong and what is
// wanted, and never showing its password.
func TestOpenRedisRefusesBadURLsWithThePasswordRedacted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url, says string
	}{
		{"redis-sentinel://:hunter2pw@s1:26379", "no ?master=NAME"},
		{"redis-sentinel://:hunter2pw@s1:26379?master=m&max_retries=3", "unknown parameter(s) max_retries"},
		{"redis-sentinel://:hunter2pw@s1:26379/x?master=m", `path "/x"`},
		{"redis-sentinel://:hunter2pw@s1:26379,,s2?master=m", "empty address"},
		{"redis-sentinel://:hunter2pw@?master=m", "no host:port address"},
		{"redis-cluster://u:hunter2pw@n1:7000/1", "only database 0"},
		{"redis-cluster://u:hunter2pw@n1:7000?read_only=1", "unknown parameter(s) read_only"},
		{"redis-cluster://u:hunter2pw@n1:99999", "bad port"},
		{"redis-cluster://u:hunter2pw@n1:7000#frag", "fragment"},
		{"redis-clustr://u:hunter2pw@n1:7000", `unknown scheme "redis-clustr"`},
		{"redis://u:hunter2pw@n1:notaport", "REDIS_URL"},
		{"127.0.0.1:6390", "no scheme: did you mean redis://127.0.0.1:6390?"},
		{"u:hunter2pw@127.0.0.1:6390", "no scheme: did you mean redis://u:[redacted]@127.0.0.1:6390?"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := redisconn.Open(context.Background(), tt.url, 0)
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.says)
			require.Contains(t, err.Error(), "redis-sentinel://[user:password@]host:port[,host:port...][/db]?master=NAME")
			require.NotContains(t, err.Error(), "hunter2pw")
		})
	}
}

// OpenRedis reaches a primary through its Sentinel and a cluster through any of its nodes,
// with the clients go-redis made for them.
func TestOpenRedisOnSentinelAndCluster(t *testing.T) {
	t.Parallel()
	t.Run("sentinel", func(t *testing.T) {
		t.Parallel()
		g := enqueuetest.Sentinel(t, redisserver.SentinelOptions{})
		rc, err := redisconn.Open(t.Context(), g.URL(), 4)
		require.NoError(t, err)
		t.Cleanup(func() { _ = rc.Close() })
		c, ok := rc.(*redis.Client)
		require.True(t, ok, "a FailoverClient is a *redis.Client, got %T", rc)
		require.Equal(t, 4, c.Options().PoolSize)
		require.NoError(t, rc.Set(t.Context(), "k", "v", 0).Err())
		direct := redis.NewClient(&redis.Options{Addr: g.Primary.Addr})
		t.Cleanup(func() { _ = direct.Close() })
		require.Equal(t, "v", direct.Get(t.Context(), "k").Val(), "the write went to the primary the Sentinel names")

		_, err = redisconn.Open(t.Context(), "redis-sentinel://"+g.Sentinel.Addr+"?master=other", 0)
		require.ErrorContains(t, err, `Sentinel `+g.Sentinel.Addr+`: monitors no primary named "other" (see ?master=)`)
	})
	t.Run("cluster", func(t *testing.T) {
		t.Parallel()
		cl := enqueuetest.Cluster(t, redisserver.ClusterOptions{})
		rc, err := redisconn.Open(t.Context(), "redis-cluster://"+cl.Nodes[1].Addr, 4)
		require.NoError(t, err)
		t.Cleanup(func() { _ = rc.Close() })
		c, ok := rc.(*redis.ClusterClient)
		require.True(t, ok, "got %T", rc)
		require.Equal(t, 4, c.Options().PoolSize)
		require.NoError(t, c.ForEachMaster(t.Context(), func(ctx context.Context, n *redis.Client) error {
			return n.Ping(ctx).Err()
		}), "one seed address is enough to learn every node")
	})
	t.Run("no sentinel there", func(t *testing.T) {
		t.Parallel()
		_, err := redisconn.Open(t.Context(), "redis-sentinel://:hunter2pw@127.0.0.1:1?master=m", 0)
		require.ErrorContains(t, err, "no Redis at redis-sentinel://:"+redact.Marker+"@127.0.0.1:1?master=m")
		require.NotContains(t, err.Error(), "hunter2pw")
	})
}
