package balance

import (
	"context"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/loop"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// IntervalDefault is how often a worker reads AnySolver's balance.
const IntervalDefault = time.Minute

// balanceTTL is how long a published balance stays readable without a worker refreshing it: a
// gateway with no worker behind it stops answering a balance nobody reads any more.
const balanceTTL = 10 * time.Minute

// Params configure a Reader.
type Params struct {
	AnySolver *anysolver.Client
	Redis     redis.UniversalClient
	Interval  time.Duration
	Observer  metrics.Observer // told the balance when it is a metrics.BalanceObserver
	Log       *slog.Logger
	Now       func() time.Time
}

// Reader reads AnySolver's balance every interval and publishes it: in Redis for the
// gateway's getBalance (keys.Balance) and to the observer for the metric. A failed read
// publishes nothing (the last balance stays, until balanceTTL) and is logged when it starts
// failing and when it recovers, not at every tick.
type Reader struct {
	p      Params
	cancel context.CancelFunc
	reader *loop.Loop
	failed bool
}

// New returns a Reader; Start runs it.
func New(p Params) *Reader { return &Reader{p: p} }

// Start reads the balance at once, then every interval, until Shutdown or ctx ends.
func (b *Reader) Start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(ctx)
	b.reader = loop.Every(ctx, b.p.Interval, true, b.read)
}

// Shutdown stops the loop, canceling a read under way, and waits for it.
func (b *Reader) Shutdown() {
	if b.cancel != nil {
		b.cancel()
	}
	b.reader.Stop()
}

// read reads and publishes the balance once.
func (b *Reader) read(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, b.p.Interval)
	defer cancel()
	balance, err := b.p.AnySolver.GetBalance(ctx)
	if err == nil {
		err = Write(ctx, b.p.Redis, Balance{Balance: balance, ReadAt: b.p.Now().UTC()}, balanceTTL)
		if o, ok := b.p.Observer.(metrics.BalanceObserver); ok {
			o.BalanceRead(balance)
		}
	}
	switch {
	case err != nil && ctx.Err() == nil && !b.failed:
		b.failed = true
		b.p.Log.Warn("could not read or publish AnySolver's balance; the gateway's getBalance answers the last one read", "err", err)
	case err == nil && b.failed:
		b.failed = false
		b.p.Log.Info("AnySolver's balance read again", "balance", balance)
	}
}
