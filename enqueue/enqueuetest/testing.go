// Package enqueuetest gives tests a real Redis: a throwaway redis-server process (from
// internal/redisserver) on its own free port and data directory, stopped when the test ends,
// and a log buffer that goroutines may write while the test reads it. It imports testing, so
// only tests may import it; the binary starts its redis-servers through redisserver directly.
package enqueuetest

import (
	"errors"
	"os"
	"strconv"
	"testing"

	"github.com/solvequeue/solvequeue/internal/redisserver"
)

// RedisOptions configures a RedisServer; see redisserver.Options. The zero value is a server
// without persistence on a free port.
type RedisOptions = redisserver.Options

// RedisServer is a redis-server child process on 127.0.0.1; see redisserver.Server.
type RedisServer = redisserver.Server

// Redis starts a server for a test and stops it in t.Cleanup; opts, at most
// one, default to a server without persistence in a directory from t.TempDir.
//
// Where redis-server is missing it calls t.Skip with a message saying how to
// install it, but when the environment variable CI is "true" (or 1) it calls
// t.Fatal instead, so a CI machine without Redis cannot pass by skipping.
func Redis(t testing.TB, opts ...RedisOptions) *RedisServer {
	t.Helper()
	return startForTest(t, os.Getenv, opts...)
}

// NeedRedisServer skips the test when redis-server is not installed, saying how to install
// it, or fails it when CI is "true" (or 1), as Redis does. It is for a test that starts
// redis-server some other way than Redis: a child process, or redisserver.Start itself.
func NeedRedisServer(t testing.TB) {
	t.Helper()
	needServer(t, os.Getenv, "")
}

func startForTest(t testing.TB, getenv func(string) string, opts ...RedisOptions) *RedisServer {
	t.Helper()
	if len(opts) > 1 {
		t.Fatalf("enqueuetest.Redis: want at most one RedisOptions, got %d", len(opts))
	}
	var o RedisOptions
	if len(opts) == 1 {
		o = opts[0]
	}
	if o.Dir == "" {
		o.Dir = t.TempDir()
	}
	s, err := redisserver.Start(t.Context(), o)
	if errors.Is(err, redisserver.ErrNotInstalled) {
		missing(t, getenv, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// needServer skips or fails t when the server binary bin is not installed.
func needServer(t testing.TB, getenv func(string) string, bin string) {
	t.Helper()
	if _, err := redisserver.LookPath(bin); err != nil {
		missing(t, getenv, err)
	}
}

// missing ends t for a redis-server that is not installed: a skip, or a failure on CI.
func missing(t testing.TB, getenv func(string) string, err error) {
	t.Helper()
	if failOnMissing(getenv("CI")) {
		t.Fatalf("%v; CI is set, so this test fails instead of skipping", err)
	}
	t.Skipf("%v; skipping", err)
}

// failOnMissing reports whether a missing redis-server fails the test rather
// than skipping it: on CI, whose environment sets CI=true.
func failOnMissing(ci string) bool {
	on, err := strconv.ParseBool(ci)
	return err == nil && on
}

// Sentinel starts a primary, its replicas and a Sentinel for a test (see
// redisserver.StartSentinel) and stops them in t.Cleanup. It skips or fails as Redis does when
// redis-server is missing.
func Sentinel(t testing.TB, opts redisserver.SentinelOptions) *redisserver.Sentinel {
	t.Helper()
	needServer(t, os.Getenv, opts.Binary)
	g, err := redisserver.StartSentinel(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Error(err)
		}
	})
	return g
}

// Cluster starts a Redis Cluster for a test (see redisserver.StartCluster) and stops it in
// t.Cleanup. It skips or fails as Redis does when redis-server or redis-cli is missing.
func Cluster(t testing.TB, opts redisserver.ClusterOptions) *redisserver.Cluster {
	t.Helper()
	needServer(t, os.Getenv, opts.Binary)
	if _, err := redisserver.LookPathCLI(opts.CLI); err != nil {
		missing(t, os.Getenv, err)
	}
	c, err := redisserver.StartCluster(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Error(err)
		}
	})
	return c
}
