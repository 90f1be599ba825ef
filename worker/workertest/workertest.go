// Package workertest is the test rig of "a real redis-server, the fake AnySolver over real HTTP
// and a worker": what the tests of package worker, its console and monitor, and the binary's
// in-process tests start a worker on.
//
// It does not start processes of the binary (cmd/solvequeue's harness does) nor mock Redis (a
// test that needs no asynq Lua uses miniredis).
package workertest

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// APIKey is the key the fake accepts when Options name none.
const APIKey = "sk-test-7c1f0d2e9b8a4f3c"

// Rig is a redis-server of the test's own and the fake AnySolver served over real HTTP on
// loopback, with a Redis client; the workers a test starts on it stop when the test ends, before
// the fake and the server do.
type Rig struct {
	// Redis is the redis-server.
	Redis *enqueuetest.RedisServer
	// RC is a client of Redis (redisconn.Open), closed when the test ends.
	RC redis.UniversalClient
	// Fake is the fake AnySolver and URL its base URL.
	Fake *anysolvertest.Server
	URL  string
	key  string
}

// New starts a redis-server and the fake AnySolver of fake (APIKeys defaults to APIKey) for the
// test t.
func New(t testing.TB, fake anysolvertest.Options) *Rig {
	t.Helper()
	if len(fake.APIKeys) == 0 {
		fake.APIKeys = []string{APIKey}
	}
	r := &Rig{Redis: enqueuetest.Redis(t), key: fake.APIKeys[0]}
	r.RC = r.Open(t)
	var srv *httptest.Server
	r.Fake, srv = anysolvertest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(r.Fake.Close) // first: held requests end before the server waits for them
	r.URL = srv.URL
	return r
}

// Open returns another client of the rig's Redis, closed when the test ends.
func (r *Rig) Open(t testing.TB) redis.UniversalClient {
	t.Helper()
	rc, err := redisconn.Open(context.Background(), r.Redis.URL(), 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = rc.Close() })
	return rc
}

// AnySolver returns a client of the fake as cfg says: BaseURL is the fake's, and APIKey, when
// empty, the first key the fake accepts.
func (r *Rig) AnySolver(t testing.TB, cfg anysolver.Config) *anysolver.Client {
	t.Helper()
	cfg.BaseURL = r.URL
	if cfg.APIKey == "" {
		cfg.APIKey = r.key
	}
	as, err := anysolver.New(cfg)
	require.NoError(t, err)
	return as
}

// Start builds the worker cfg describes and starts it; a nil Redis is the rig's client and a nil
// AnySolver a client of the fake with its first key. stop shuts the worker down (once; the test's
// end does if nothing did before).
func (r *Rig) Start(t testing.TB, cfg worker.Config) (w *worker.Worker, stop func()) {
	t.Helper()
	if cfg.Redis == nil {
		cfg.Redis = r.RC
	}
	if cfg.AnySolver == nil {
		cfg.AnySolver = r.AnySolver(t, anysolver.Config{})
	}
	w, err := worker.New(cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(context.Background()))
	var once sync.Once
	stop = func() { once.Do(func() { _ = w.Shutdown(context.Background()) }) }
	t.Cleanup(stop)
	return w, stop
}
