package failedindex_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/failedindex"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/redisconn"
)

func TestFailedIndex(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := enqueuetest.Redis(t)
	rc, err := redisconn.Open(ctx, r.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { rc.Close() })

	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	require.Equal(t, "DOMAIN_BANNED order-42", failedindex.Member("DOMAIN_BANNED", "order-42"))
	require.Equal(t, "ERRORproxy order-1", failedindex.Member("ERROR proxy\n", "order-1"), "a code is reduced to a safe word")
	require.Equal(t, "- x", failedindex.Member("", "x"))
	for i, m := range []string{failedindex.Member("DOMAIN_BANNED", "a-1"), failedindex.Member("JOB_EXPIRED", "b 2")} {
		require.NoError(t, rc.ZAdd(ctx, keys.Failed("q"), redisZ(m, at.Add(time.Duration(i)*time.Minute))).Err())
	}
	got, err := failedindex.List(ctx, rc, "q")
	require.NoError(t, err)
	require.Equal(t, []failedindex.Entry{{ID: "b 2", Code: "JOB_EXPIRED", FailedAt: at.Add(time.Minute)},
		{ID: "a-1", Code: "DOMAIN_BANNED", FailedAt: at}}, got, "newest first")
	require.NoError(t, failedindex.Forget(ctx, rc, "q", got[:1]))
	got, err = failedindex.List(ctx, rc, "q")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, "a-1", got[0].ID)
}

func redisZ(member string, at time.Time) redis.Z {
	return redis.Z{Score: float64(at.UnixMilli()), Member: member}
}
