package bench

import (
	"context"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// pipeline is solvequeue's whole pipeline on the bench's Redis: a fake AnySolver of its own
// served over loopback, a worker built as `solvequeue worker` builds it (its own Redis
// connection with the default pool), and a producer client on a second connection.
type pipeline struct {
	fake     *anysolvertest.Server
	stopFake func()
	wrc, prc interface{ Close() error }
	as       *anysolver.Client
	w        *worker.Worker
	producer *enqueue.Client
}

// startPipeline starts a pipeline whose fake follows script and whose worker runs cfg, with
// Redis, AnySolver and Logger filled in here.
func startPipeline(ctx context.Context, e *env, script func(anysolvertest.Task) anysolvertest.Behavior, cfg worker.Config) (*pipeline, error) {
	p := &pipeline{fake: anysolvertest.New(anysolvertest.Options{Balance: 1e9, Script: script})}
	url, stop, err := serveFake(p.fake)
	if err != nil {
		return nil, err
	}
	p.stopFake = stop
	fail := func(err error) (*pipeline, error) {
		p.close()
		return nil, err
	}
	wrc, err := e.openRedis(ctx, 0)
	if err != nil {
		return fail(err)
	}
	p.wrc = wrc
	if p.as, err = anysolver.New(anysolver.Config{BaseURL: url, APIKey: apiKey}); err != nil {
		return fail(err)
	}
	cfg.Redis, cfg.AnySolver, cfg.Logger = wrc, p.as, e.quietLogger()
	if p.w, err = worker.New(cfg); err != nil {
		return fail(err)
	}
	if err := p.w.Start(ctx); err != nil {
		p.w = nil
		return fail(err)
	}
	prc, err := e.openRedis(ctx, enqueueConcurrency+8)
	if err != nil {
		return fail(err)
	}
	p.prc = prc
	if p.producer, err = enqueue.NewClient(enqueue.Config{Redis: prc}); err != nil {
		return fail(err)
	}
	return p, nil
}

// close stops the worker, then closes the connections and the fake.
func (p *pipeline) close() {
	if p.w != nil {
		_ = p.w.Shutdown(context.Background())
	}
	if p.as != nil {
		p.as.CloseIdleConnections()
	}
	for _, c := range []interface{ Close() error }{p.prc, p.wrc} {
		if c != nil {
			_ = c.Close()
		}
	}
	if p.stopFake != nil {
		p.stopFake()
	}
}
