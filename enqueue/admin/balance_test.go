package admin_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/balance"
)

// TestBalance: the operator reads the balance a worker published, and ErrBalanceUnknown before
// any did.
func TestBalance(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	a, err := admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	ctx := context.Background()

	_, err = a.Balance(ctx)
	require.ErrorIs(t, err, admin.ErrBalanceUnknown)

	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, balance.Write(ctx, rc, balance.Balance{Balance: 12.5, ReadAt: at}, 0))
	b, err := a.Balance(ctx)
	require.NoError(t, err)
	require.Equal(t, admin.Balance{Balance: 12.5, ReadAt: at}, b)
}
