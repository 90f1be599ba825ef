package redisserver_test

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/redisserver"
)

func client(t *testing.T, s *redisserver.Server) *redis.Client {
	t.Helper()
	opts, err := redis.ParseURL(s.URL())
	require.NoError(t, err)
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// requireDown checks that nothing listens on addr, without go-redis's dial-failure logs.
func requireDown(t *testing.T, addr string) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = conn.Close()
	}
	require.Error(t, err, "%s still listens", addr)
}

func TestRedisStartAndPing(t *testing.T) {
	t.Parallel()

	s := enqueuetest.Redis(t)
	require.True(t, strings.HasPrefix(s.Addr, "127.0.0.1:"), s.Addr)
	require.Equal(t, "redis://"+s.Addr, s.URL())
	require.FileExists(t, filepath.Join(s.Dir, redisserver.LogName))

	ctx := t.Context()
	c := client(t, s)
	require.NoError(t, c.Ping(ctx).Err())
	require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
	require.Equal(t, "v", c.Get(ctx, "k").Val())

	cfg := c.ConfigGet(ctx, "*").Val()
	require.Equal(t, "127.0.0.1", cfg["bind"])
	require.Equal(t, "no", cfg["protected-mode"])
	require.Equal(t, "", cfg["save"])
	require.Equal(t, "no", cfg["appendonly"])
}

func TestRedisRestart(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		opts     redisserver.Options
		crash    bool
		survives bool
	}{
		{"append-only, killed", redisserver.Options{AppendOnly: true, AppendFsync: "always"}, true, true},
		{"append-only, stopped", redisserver.Options{AppendOnly: true}, false, true},
		{"no persistence, killed", redisserver.Options{}, true, false},
		{"no persistence, stopped", redisserver.Options{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := enqueuetest.Redis(t, tt.opts)
			addr := s.Addr
			ctx := t.Context()
			c := client(t, s)
			require.NoError(t, c.Set(ctx, "job", "paid", 0).Err())
			if tt.crash {
				require.NoError(t, s.Kill())
				requireDown(t, addr)
			}
			require.NoError(t, s.Restart(ctx))
			require.Equal(t, addr, s.Addr, "same port")

			got, err := c.Get(ctx, "job").Result()
			if tt.survives {
				require.NoError(t, err)
				require.Equal(t, "paid", got)
			} else {
				require.ErrorIs(t, err, redis.Nil)
			}
		})
	}
}

func TestRedisKill(t *testing.T) {
	t.Parallel()

	s := enqueuetest.Redis(t)
	require.NoError(t, client(t, s).Ping(t.Context()).Err())
	require.NoError(t, s.Kill())
	require.NoError(t, s.Kill(), "idempotent")
	requireDown(t, s.Addr)
	require.NoError(t, s.Stop(), "Stop after Kill")
}

func TestStartRedisServerOwnsTempDir(t *testing.T) {
	t.Parallel()
	enqueuetest.NeedRedisServer(t)

	s, err := redisserver.Start(t.Context(), redisserver.Options{})
	require.NoError(t, err)
	require.DirExists(t, s.Dir)
	require.NoError(t, client(t, s).Ping(t.Context()).Err())
	require.NoError(t, s.Stop())
	require.NoDirExists(t, s.Dir, "Stop removes the directory it made")
	require.NoError(t, s.Stop(), "idempotent")
	require.ErrorContains(t, s.Restart(t.Context()), "stopped for good")
}

func TestStartRedisServerFixedPort(t *testing.T) {
	t.Parallel()

	port, err := redisserver.FreePort()
	require.NoError(t, err)
	s := enqueuetest.Redis(t, redisserver.Options{Port: port})
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", port), s.Addr)

	// A second server on the same port cannot start; the error quotes its log.
	_, err = redisserver.Start(t.Context(), redisserver.Options{Port: port, Dir: t.TempDir()})
	require.ErrorContains(t, err, "Address already in use")
}

func TestStartRedisServerErrors(t *testing.T) {
	t.Parallel()

	const missing = "/nonexistent/redis-server"
	tests := []struct {
		name        string
		opts        redisserver.Options
		want        string
		needsServer bool // the error is redis-server's own
	}{
		{"missing binary", redisserver.Options{Binary: missing}, "install redis-server (apt-get install redis-server)", false},
		{"bad fsync", redisserver.Options{AppendFsync: "sometimes"}, `AppendFsync must be "always" or "everysec", got "sometimes"`, false},
		{"bad port", redisserver.Options{Port: 70000}, "Port must be between 0 and 65535", false},
		// Options are checked before the binary is looked for: the wrong option is what is said.
		{"bad fsync, no binary", redisserver.Options{AppendFsync: "sometimes", Binary: missing}, `AppendFsync must be "always"`, false},
		{"bad port, no binary", redisserver.Options{Port: -1, Binary: missing}, "Port must be between 0 and 65535", false},
		{"bad argument", redisserver.Options{Dir: t.TempDir(), Args: []string{"--no-such-directive", "1"}}, "its log ends:", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.needsServer {
				enqueuetest.NeedRedisServer(t)
			}
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			s, err := redisserver.Start(ctx, tt.opts)
			require.Nil(t, s)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := redisserver.Start(t.Context(), redisserver.Options{Binary: missing})
	require.ErrorIs(t, err, redisserver.ErrNotInstalled)
}
