package workertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Dump returns every key of rc, one a line, with its type and all it holds (a string's value, a
// hash's fields and values, a list's, a set's or a sorted set's members, a stream's entries) as
// Go prints it, strings unescaped: what a test searches for something that must never reach
// Redis, such as a secret, which an escaping (JSON's of '<', '&' or bad UTF-8) could hide.
func Dump(t testing.TB, rc redis.UniversalClient) string {
	t.Helper()
	ctx := context.Background()
	var out strings.Builder
	iter := rc.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		typ, err := rc.Type(ctx, key).Result()
		require.NoError(t, err)
		var v any
		switch typ {
		case "string":
			v, err = rc.Get(ctx, key).Result()
		case "hash":
			v, err = rc.HGetAll(ctx, key).Result()
		case "list":
			v, err = rc.LRange(ctx, key, 0, -1).Result()
		case "set":
			v, err = rc.SMembers(ctx, key).Result()
		case "zset":
			v, err = rc.ZRangeWithScores(ctx, key, 0, -1).Result()
		case "stream":
			v, err = rc.XRange(ctx, key, "-", "+").Result()
		case "none": // gone since the scan saw it
		default:
			t.Fatalf("key %s has type %s, which Dump cannot read", key, typ)
		}
		if err != nil && err != redis.Nil {
			require.NoError(t, err)
		}
		fmt.Fprintf(&out, "%s %s %v\n", key, typ, v)
	}
	require.NoError(t, iter.Err())
	return out.String()
}
