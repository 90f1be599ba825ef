package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/redact"
)

// DefaultURL is where solvequeue looks for Redis when REDIS_URL is not set.
const DefaultURL = "redis://127.0.0.1:6379/0"

// Open connects to the Redis at rawURL, for solvequeue's own keys and for asynq alike:
//
//   - redis:// and rediss:// (TLS) with user, password and DB, parsed by go-redis (which keeps an
//     ACL user name, unlike asynq's ParseRedisURI); redis-socket:// by asynq;
//   - redis-sentinel://[user:password@]host:port[,host:port...][/db]?master=NAME: go-redis's
//     FailoverClient, which asks the Sentinels for the primary and follows a failover by itself;
//   - redis-cluster://[user:password@]host:port[,host:port...]: go-redis's ClusterClient.
//
// poolSize 0 keeps the library default (per node for a cluster). It pings once so that a wrong
// URL is reported now, with the fix; a URL shows in errors with its password redacted.
func Open(ctx context.Context, rawURL string, poolSize int) (redis.UniversalClient, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	rc, err := newRedisClient(rawURL, poolSize)
	if err != nil {
		return nil, err
	}
	if opt, err := ParseSentinelURL(rawURL); err == nil {
		// go-redis's FailoverClient retries a Sentinel that does not answer for half a minute
		// and more: ask each once, to say at once what is wrong.
		if err := askSentinels(ctx, opt); err != nil {
			_ = rc.Close()
			return nil, fmt.Errorf("no Redis at %s: %w", redact.URL(rawURL), redact.URLError(err, rawURL))
		}
	}
	if err := rc.Ping(ctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("no Redis at %s: %w (start redis-server or set REDIS_URL)", redact.URL(rawURL), redact.URLError(err, rawURL))
	}
	return rc, nil
}

// askSentinels asks the Sentinels in turn, once each, where opt's primary is, and says what is
// wrong when none knows: none answers, or none monitors a primary of that name.
func askSentinels(ctx context.Context, opt *redis.FailoverOptions) error {
	var errs []error
	for _, addr := range opt.SentinelAddrs {
		sc := redis.NewSentinelClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second,
			MaxRetries: -1, DialerRetries: 1, PoolSize: 1, Protocol: opt.Protocol,
			Username: opt.SentinelUsername, Password: opt.SentinelPassword})
		_, err := sc.GetMasterAddrByName(ctx, opt.MasterName).Result()
		_ = sc.Close()
		if err == nil {
			return nil
		}
		if errors.Is(err, redis.Nil) {
			err = fmt.Errorf("monitors no primary named %q (see ?master=)", opt.MasterName)
		}
		errs = append(errs, fmt.Errorf("Sentinel %s: %w", addr, err))
	}
	msg := make([]string, len(errs))
	for i, e := range errs {
		msg[i] = e.Error()
	}
	return fmt.Errorf("no Sentinel knows the primary: %s", strings.Join(msg, "; "))
}
