// Package rig wires solvequeue's whole pipeline in one process: a Redis (in process, a
// redis-server of its own, or one given by URL), the fake AnySolver served on loopback, a
// worker and a producer client. The demo, the soak and the bench run on it, each with its own
// options; what they measure or show is theirs, the wiring is here once.
package rig

import (
	"context"
	"errors"
	"fmt"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

// Embedded is the Redis a rig starts when it is given no URL.
type Embedded int

const (
	// RedisServer starts a redis-server child process without persistence, on a free port in a
	// temporary directory: real Redis, for figures that mean something.
	RedisServer Embedded = iota
	// MiniRedis runs Redis in this process (miniredis): nothing to install.
	MiniRedis
)

// RedisOptions say which Redis a rig runs on.
type RedisOptions struct {
	// URL is a Redis to use, as REDIS_URL takes it; "" starts one as Embedded says.
	URL string
	// Embedded is the Redis started when URL is "". Defaults to RedisServer.
	Embedded Embedded
	// PoolSize is the pool of Client; 0 keeps go-redis's default.
	PoolSize int
}

// Redis is the Redis a rig runs on, and its main connection.
type Redis struct {
	// Client is the main connection.
	Client redis.UniversalClient
	// URL opens more connections to the same Redis (see Open).
	URL string
	// Where says which Redis it is, for people: "in-process Redis (miniredis)", "its own
	// redis-server on 127.0.0.1:PORT", or "Redis at URL" with the password redacted.
	Where string
	// Server is the redis-server started here; nil on miniredis or a Redis given by URL.
	Server *redisserver.Server

	mini *miniredis.Miniredis
}

// OpenRedis connects to o.URL, or starts the Redis o.Embedded names and connects to it.
func OpenRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	r := &Redis{URL: o.URL}
	switch {
	case o.URL != "":
		r.Where = "Redis at " + redact.URL(o.URL)
	case o.Embedded == MiniRedis:
		r.mini = miniredis.NewMiniRedis()
		if err := r.mini.StartAddr("127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("start the in-process Redis: %w", err)
		}
		r.URL, r.Where = "redis://"+r.mini.Addr(), "in-process Redis (miniredis)"
	default:
		s, err := redisserver.Start(ctx, redisserver.Options{})
		if err != nil {
			return nil, fmt.Errorf("%w (or give a Redis with --redis / REDIS_URL)", err)
		}
		r.Server, r.URL, r.Where = s, s.URL(), "its own redis-server on "+s.Addr
	}
	c, err := r.Open(ctx, o.PoolSize)
	if err != nil {
		_ = r.Close()
		return nil, err
	}
	r.Client = c
	return r, nil
}

// Own reports whether the Redis was started here, so that nothing else uses it: a caller may
// flush it.
func (r *Redis) Own() bool { return r.Server != nil || r.mini != nil }

// Open opens another connection to the Redis, as a second process would; poolSize 0 keeps
// go-redis's default. The caller closes it.
func (r *Redis) Open(ctx context.Context, poolSize int) (redis.UniversalClient, error) {
	return redisconn.Open(ctx, r.URL, poolSize)
}

// Close closes the main connection and stops the Redis started here.
func (r *Redis) Close() error {
	var errs []error
	if r.Client != nil {
		errs = append(errs, r.Client.Close())
	}
	if r.Server != nil {
		errs = append(errs, r.Server.Stop())
	}
	if r.mini != nil {
		r.mini.Close()
	}
	return errors.Join(errs...)
}
