package enqueuetest

import (
	"errors"
	"os"
	"strconv"
	"testing"
)

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
	s, err := StartRedisServer(t.Context(), o)
	if errors.Is(err, ErrNoRedisServer) {
		if failOnMissing(getenv("CI")) {
			t.Fatalf("%v; CI is set, so this test fails instead of skipping", err)
		}
		t.Skipf("%v; skipping", err)
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

// failOnMissing reports whether a missing redis-server fails the test rather
// than skipping it: on CI, whose environment sets CI=true.
func failOnMissing(ci string) bool {
	on, err := strconv.ParseBool(ci)
	return err == nil && on
}
