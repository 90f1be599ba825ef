package enqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
)

func TestBalanceRoundTrip(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()

	_, err := enqueue.ReadBalance(ctx, rc)
	require.ErrorIs(t, err, enqueue.ErrBalanceUnknown)

	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, enqueue.WriteBalance(ctx, rc, enqueue.Balance{Balance: 12.34, ReadAt: at}, time.Hour))
	b, err := enqueue.ReadBalance(ctx, rc)
	require.NoError(t, err)
	require.Equal(t, enqueue.Balance{Balance: 12.34, ReadAt: at}, b)
	require.Equal(t, time.Hour, mr.TTL(keys.Balance))

	require.NoError(t, rc.Set(ctx, keys.Balance, "not json", 0).Err())
	_, err = enqueue.ReadBalance(ctx, rc)
	require.Error(t, err)
	require.NotErrorIs(t, err, enqueue.ErrBalanceUnknown)
}
