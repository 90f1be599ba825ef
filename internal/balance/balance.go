// Package balance reads AnySolver's account balance on a schedule (Reader) and stores it as a
// worker last read it (Write, Read), for the gateway's getBalance, the web console and the
// operator's API to show without asking AnySolver.
//
// The worker's decisions never depend on it: the account breaker probes the balance itself.
package balance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/keys"
)

// ErrUnknown is returned by Read while no worker has published a balance.
var ErrUnknown = errors.New("AnySolver's balance is not known yet: no worker has read it (workers read it every minute)")

// Balance is AnySolver's balance as a worker read it through getBalance.
type Balance struct {
	Balance float64   `json:"balance"`
	ReadAt  time.Time `json:"readAt"`
}

// Write publishes b for the gateway and the web UI. ttl bounds how long a balance that
// no worker refreshes stays readable (0 keeps it).
func Write(ctx context.Context, rc redis.UniversalClient, b Balance, ttl time.Duration) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("encode balance: %w", err)
	}
	if err := rc.Set(ctx, keys.Balance, data, ttl).Err(); err != nil {
		return fmt.Errorf("publish balance: %w", err)
	}
	return nil
}

// Read returns the balance workers last published, or ErrUnknown.
func Read(ctx context.Context, rc redis.UniversalClient) (Balance, error) {
	data, err := rc.Get(ctx, keys.Balance).Bytes()
	if errors.Is(err, redis.Nil) {
		return Balance{}, ErrUnknown
	}
	if err != nil {
		return Balance{}, fmt.Errorf("read balance: %w", err)
	}
	var b Balance
	if err := json.Unmarshal(data, &b); err != nil {
		return Balance{}, fmt.Errorf("read balance: %w", err)
	}
	return b, nil
}
