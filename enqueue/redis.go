package enqueue

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// DefaultRedisURL is where solvequeue looks for Redis when REDIS_URL is not set.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// OpenRedis connects to the Redis at rawURL: redis:// and rediss:// (TLS) with user, password
// and DB are parsed by go-redis (which keeps an ACL user name, unlike asynq's ParseRedisURI);
// redis-socket:// and redis-sentinel:// by asynq. poolSize 0 keeps the library default. It
// pings once so that a wrong URL is reported now, with the fix.
func OpenRedis(ctx context.Context, rawURL string, poolSize int) (redis.UniversalClient, error) {
	if rawURL == "" {
		rawURL = DefaultRedisURL
	}
	var rc redis.UniversalClient
	switch {
	case strings.HasPrefix(rawURL, "redis://"), strings.HasPrefix(rawURL, "rediss://"):
		opt, err := redis.ParseURL(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL %q: %w", RedactURL(rawURL), RedactURLError(err, rawURL))
		}
		if poolSize > 0 {
			opt.PoolSize = poolSize
		}
		rc = redis.NewClient(opt)
	default:
		opt, err := asynq.ParseRedisURI(rawURL)
		if err != nil {
			return nil, fmt.Errorf("REDIS_URL %q: %w (want redis://, rediss://, redis-socket:// or redis-sentinel://)", RedactURL(rawURL), RedactURLError(err, rawURL))
		}
		c, ok := opt.MakeRedisClient().(redis.UniversalClient)
		if !ok {
			return nil, errors.New("REDIS_URL: unsupported Redis client kind")
		}
		rc = c
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("no Redis at %s: %w (start redis-server or set REDIS_URL)", RedactURL(rawURL), RedactURLError(err, rawURL))
	}
	return rc, nil
}
