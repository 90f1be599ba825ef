package balance_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/keys"
)

func TestBalanceRoundTrip(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()

	_, err := balance.Read(ctx, rc)
	require.ErrorIs(t, err, balance.ErrUnknown)

	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	require.NoError(t, balance.Write(ctx, rc, balance.Balance{Balance: 12.34, ReadAt: at}, time.Hour))
	b, err := balance.Read(ctx, rc)
	require.NoError(t, err)
	require.Equal(t, balance.Balance{Balance: 12.34, ReadAt: at}, b)
	require.Equal(t, time.Hour, mr.TTL(keys.Balance))

	require.NoError(t, rc.Set(ctx, keys.Balance, "not json", 0).Err())
	_, err = balance.Read(ctx, rc)
	require.Error(t, err)
	require.NotErrorIs(t, err, balance.ErrUnknown)
}
