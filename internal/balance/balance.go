package worker

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// BalanceIntervalDefault is how often a worker reads AnySolver's balance.
const BalanceIntervalDefault = time.Minute

// balanceTTL is how long a published balance stays readable without a worker refreshing it: a
// gateway with no worker behind it stops answering a balance nobody reads any more.
const balanceTTL = 10 * time.Minute

// BalanceObserver is an Observer that also wants AnySolver's balance each time a worker reads
// it (Metrics is one: the gauge solvequeue_anysolver_balance).
type BalanceObserver interface {
	BalanceRead(balance float64)
}

// BalanceRead sets solvequeue_anysolver_balance.
func (m *Metrics) BalanceRead(balance float64) { m.balance.Set(balance) }

// newBalanceGauge is solvequeue_anysolver_balance, registered by NewMetrics.
func newBalanceGauge() prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "solvequeue_anysolver_balance",
		Help: "AnySolver's account balance as this worker last read it (getBalance, every minute).",
	})
}

// balanceReaderParams configure a balanceReader.
type balanceReaderParams struct {
	anysolver *anysolver.Client
	rc        redis.UniversalClient
	interval  time.Duration
	observer  Observer
	log       *slog.Logger
	now       func() time.Time
}

// balanceReader reads AnySolver's balance every interval and publishes it: in Redis for the
// gateway's getBalance (keys.Balance) and to the observer for the metric. A failed read
// publishes nothing (the last balance stays, until balanceTTL) and is logged when it starts
// failing and when it recovers, not at every tick.
type balanceReader struct {
	p      balanceReaderParams
	cancel context.CancelFunc
	done   sync.WaitGroup
	failed bool
}

func newBalanceReader(p balanceReaderParams) *balanceReader { return &balanceReader{p: p} }

// start reads the balance at once, then every interval, until shutdown or ctx ends.
func (b *balanceReader) start(ctx context.Context) {
	ctx, b.cancel = context.WithCancel(ctx)
	b.done.Add(1)
	go func() {
		defer b.done.Done()
		t := time.NewTicker(b.p.interval)
		defer t.Stop()
		for {
			b.read(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// shutdown stops the loop and waits for it.
func (b *balanceReader) shutdown() {
	if b.cancel != nil {
		b.cancel()
	}
	b.done.Wait()
}

// read reads and publishes the balance once.
func (b *balanceReader) read(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, b.p.interval)
	defer cancel()
	balance, err := b.p.anysolver.GetBalance(ctx)
	if err == nil {
		err = enqueue.WriteBalance(ctx, b.p.rc, enqueue.Balance{Balance: balance, ReadAt: b.p.now().UTC()}, balanceTTL)
		if o, ok := b.p.observer.(BalanceObserver); ok {
			o.BalanceRead(balance)
		}
	}
	switch {
	case err != nil && ctx.Err() == nil && !b.failed:
		b.failed = true
		b.p.log.Warn("could not read or publish AnySolver's balance; the gateway's getBalance answers the last one read", "err", err)
	case err == nil && b.failed:
		b.failed = false
		b.p.log.Info("AnySolver's balance read again", "balance", balance)
	}
}
