package benchenv

import (
	"context"

	"github.com/solvequeue/solvequeue/cmd/solvequeue/internal/rig"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// StartPipeline starts solvequeue's whole pipeline on the bench's Redis: a fake AnySolver of
// its own that follows script, a worker that runs cfg, built as `solvequeue worker` builds it
// (its own Redis connection with the default pool), and a producer client on a second
// connection. cfg's Logger defaults to the bench's quiet one.
func StartPipeline(ctx context.Context, e *Env, script func(anysolvertest.Task) anysolvertest.Behavior, cfg worker.Config) (*rig.Pipeline, error) {
	if cfg.Logger == nil {
		cfg.Logger = e.QuietLogger()
	}
	p, err := rig.New(ctx, e.Redis, rig.Options{
		Fake:                anysolvertest.Options{Balance: 1e9, Script: script},
		APIKey:              APIKey,
		Worker:              cfg,
		SeparateConnections: true,
		ProducerPool:        EnqueueConcurrency + 8,
	})
	if err != nil {
		return nil, err
	}
	if err := p.Start(ctx); err != nil {
		_ = p.Close()
		return nil, err
	}
	return p, nil
}
