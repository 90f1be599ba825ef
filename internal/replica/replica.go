// Package replica asks a Redis primary about its replicas, for the writes that wait until a
// replica holds them (WAIT) before the worker goes on: a paid task's remote id, the breaker's state.
package replica

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// AckTimeout bounds a wait (WAIT 1) for a replica to hold a write.
const AckTimeout = time.Second

// Connected asks the primary how many replicas it has (INFO replication's
// connected_slaves); a failed ask counts none.
func Connected(ctx context.Context, c redis.Cmdable) int {
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0
	}
	n := 0
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ = strconv.Atoi(v)
		}
	}
	return n
}
