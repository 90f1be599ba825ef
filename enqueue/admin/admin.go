// Package admin is the operator's side of solvequeue: the dead-letter queue (list, read,
// redrive, purge), failed jobs (list, run again) and AnySolver's balance as the workers last
// read it. The producer's side (submit, wait) is package enqueue; a program that only submits
// jobs never needs this one.
package admin

import (
	"context"
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/failedindex"
	"github.com/solvequeue/solvequeue/internal/jobwire"
)

// Config configures a Client. A redriven job is enqueued as a producer enqueues one, so give the
// values the producers' enqueue.Config has; zero fields take the same defaults.
type Config struct {
	// Redis is the connection to use; the Client does not close it.
	Redis redis.UniversalClient
	// Retention is how long a finished job's outcome stays readable. Defaults to 24 h.
	Retention time.Duration
	// AttemptTimeout bounds one attempt of a job in the worker. Defaults to 7 min.
	AttemptTimeout time.Duration
	// BlobTTL is the TTL a redriven job's image body gets back. Defaults to 7 days.
	BlobTTL time.Duration
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// DeadLetter is one job in the dead-letter queue, with everything needed to redrive it.
type DeadLetter = deadletter.Letter

// FailedEntry is one job of a queue's index of failed jobs.
type FailedEntry = failedindex.Entry

// Client is an operator's handle on the queues. It is safe for concurrent use.
type Client struct {
	cfg       Config
	rc        redis.UniversalClient
	asynq     *asynq.Client
	inspector *asynq.Inspector
}

// NewClient returns a Client on cfg.Redis.
func NewClient(cfg Config) (*Client, error) {
	if cfg.Redis == nil {
		return nil, errors.New("admin: Config.Redis is required")
	}
	if cfg.Retention <= 0 {
		cfg.Retention = jobwire.RetentionDefault
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = jobwire.AttemptTimeoutDefault
	}
	if cfg.BlobTTL <= 0 {
		cfg.BlobTTL = jobwire.BlobTTLDefault
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Client{cfg: cfg, rc: cfg.Redis,
		asynq:     asynq.NewClientFromRedisClient(cfg.Redis),
		inspector: asynq.NewInspectorFromRedisClient(cfg.Redis)}, nil
}

// Balance is AnySolver's balance as a worker last read it through getBalance.
type Balance = balance.Balance

// ErrBalanceUnknown is returned by Client.Balance while no worker has published a balance.
var ErrBalanceUnknown = balance.ErrUnknown

// Balance returns AnySolver's balance as a worker last read it (workers read it every minute),
// or ErrBalanceUnknown.
func (c *Client) Balance(ctx context.Context) (Balance, error) {
	return balance.Read(ctx, c.rc)
}
