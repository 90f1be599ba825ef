package rig

import (
	"context"
	"errors"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// APIKeyDefault is the AnySolver key a pipeline's client gives the fake when Options has none.
const APIKeyDefault = "rig-key"

// Options configure a Pipeline.
type Options struct {
	// Fake configures the fake AnySolver: its script, its balance.
	Fake anysolvertest.Options
	// APIKey is the key the worker's AnySolver client sends. Defaults to APIKeyDefault.
	APIKey string
	// Worker configures the worker; its Redis and AnySolver are filled in here.
	Worker worker.Config
	// Producer configures the producer client; its Redis is filled in here.
	Producer enqueue.Config
	// SeparateConnections gives the worker and the producer each a connection of its own, as
	// `solvequeue worker` and a producer process would have: the worker's with go-redis's
	// default pool, the producer's with ProducerPool. Without it both use the Redis's Client.
	SeparateConnections bool
	// ProducerPool is the pool of the producer's own connection (SeparateConnections); 0 keeps
	// go-redis's default.
	ProducerPool int
}

// Pipeline is solvequeue's whole pipeline on one Redis: the fake AnySolver on loopback, a
// worker solving through it, and a producer client. New builds it; Start starts the worker;
// Close takes it all down.
type Pipeline struct {
	// Fake is the fake AnySolver the worker solves through.
	Fake *Fake
	// AnySolver is the worker's client of the fake.
	AnySolver *anysolver.Client
	// Worker is the worker, built but not running until Start.
	Worker *worker.Worker
	// Producer submits jobs and reads outcomes.
	Producer *enqueue.Client

	conns   []redis.UniversalClient // opened here, closed by Close
	started bool
}

// New builds a pipeline on r. The worker is built but does not run until Start.
func New(ctx context.Context, r *Redis, o Options) (_ *Pipeline, err error) {
	p := &Pipeline{}
	defer func() {
		if err != nil {
			_ = p.Close()
		}
	}()
	if p.Fake, err = StartFake(o.Fake); err != nil {
		return nil, err
	}
	if o.APIKey == "" {
		o.APIKey = APIKeyDefault
	}
	if p.AnySolver, err = anysolver.New(anysolver.Config{BaseURL: p.Fake.URL, APIKey: o.APIKey}); err != nil {
		return nil, err
	}
	workerRedis, producerRedis := r.Client, r.Client
	if o.SeparateConnections {
		if workerRedis, err = p.open(ctx, r, 0); err != nil {
			return nil, err
		}
		if producerRedis, err = p.open(ctx, r, o.ProducerPool); err != nil {
			return nil, err
		}
	}
	o.Worker.Redis, o.Worker.AnySolver = workerRedis, p.AnySolver
	if p.Worker, err = worker.New(o.Worker); err != nil {
		return nil, err
	}
	o.Producer.Redis = producerRedis
	if p.Producer, err = enqueue.NewClient(o.Producer); err != nil {
		return nil, err
	}
	return p, nil
}

// open opens a connection that Close closes.
func (p *Pipeline) open(ctx context.Context, r *Redis, poolSize int) (redis.UniversalClient, error) {
	c, err := r.Open(ctx, poolSize)
	if err != nil {
		return nil, err
	}
	p.conns = append(p.conns, c)
	return c, nil
}

// Start starts the worker.
func (p *Pipeline) Start(ctx context.Context) error {
	if err := p.Worker.Start(ctx); err != nil {
		return err
	}
	p.started = true
	return nil
}

// Close stops the worker (letting its handed-back attempts record their paid tasks for up to
// worker.DrainTimeoutDefault), then closes the connections opened here and the fake. The Redis
// itself is the caller's to close.
func (p *Pipeline) Close() error {
	var errs []error
	if p.started {
		ctx, cancel := context.WithTimeout(context.Background(), worker.DrainTimeoutDefault)
		errs = append(errs, p.Worker.Shutdown(ctx))
		cancel()
		p.started = false
	}
	if p.AnySolver != nil {
		p.AnySolver.CloseIdleConnections()
	}
	for _, c := range p.conns {
		errs = append(errs, c.Close())
	}
	p.conns = nil
	if p.Fake != nil {
		p.Fake.Close()
	}
	return errors.Join(errs...)
}
