package enqueuetest

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func client(t *testing.T, s *RedisServer) *redis.Client {
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

	s := Redis(t)
	require.True(t, strings.HasPrefix(s.Addr, "127.0.0.1:"), s.Addr)
	require.Equal(t, "redis://"+s.Addr, s.URL())
	require.FileExists(t, filepath.Join(s.Dir, logName))

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
		opts     RedisOptions
		crash    bool
		survives bool
	}{
		{"append-only, killed", RedisOptions{AppendOnly: true, AppendFsync: "always"}, true, true},
		{"append-only, stopped", RedisOptions{AppendOnly: true}, false, true},
		{"no persistence, killed", RedisOptions{}, true, false},
		{"no persistence, stopped", RedisOptions{}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := Redis(t, tt.opts)
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

	s := Redis(t)
	require.NoError(t, client(t, s).Ping(t.Context()).Err())
	require.NoError(t, s.Kill())
	require.NoError(t, s.Kill(), "idempotent")
	requireDown(t, s.Addr)
	require.NoError(t, s.Stop(), "Stop after Kill")
}

func TestStartRedisServerOwnsTempDir(t *testing.T) {
	t.Parallel()

	s, err := StartRedisServer(t.Context(), RedisOptions{})
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

	port, err := freePort()
	require.NoError(t, err)
	s := Redis(t, RedisOptions{Port: port})
	require.Equal(t, fmt.Sprintf("127.0.0.1:%d", port), s.Addr)

	// A second server on the same port cannot start; the error quotes its log.
	_, err = StartRedisServer(t.Context(), RedisOptions{Port: port, Dir: t.TempDir()})
	require.ErrorContains(t, err, "Address already in use")
}

func TestStartRedisServerErrors(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name string
		opts RedisOptions
		want string
	}{
		{"missing binary", RedisOptions{Binary: "/nonexistent/redis-server"}, "install redis-server (apt-get install redis-server)"},
		{"bad fsync", RedisOptions{AppendFsync: "sometimes"}, `AppendFsync must be "always" or "everysec", got "sometimes"`},
		{"bad port", RedisOptions{Port: 70000}, "Port must be between 0 and 65535"},
		{"bad argument", RedisOptions{Dir: t.TempDir(), Args: []string{"--no-such-directive", "1"}}, "its log ends:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			s, err := StartRedisServer(ctx, tt.opts)
			require.Nil(t, s)
			require.ErrorContains(t, err, tt.want)
		})
	}
	_, err := StartRedisServer(t.Context(), RedisOptions{Binary: "/nonexistent/redis-server"})
	require.ErrorIs(t, err, ErrNoRedisServer)
}

func TestFailOnMissing(t *testing.T) {
	t.Parallel()

	for ci, want := range map[string]bool{"true": true, "TRUE": true, "1": true, "": false, "false": false, "0": false, "yes": false} {
		require.Equal(t, want, failOnMissing(ci), "CI=%q", ci)
	}
}

// recordingTB stands in for a test, recording how it ended.
type recordingTB struct {
	testing.TB
	ended   string // "skip" or "fatal"
	message string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.ended, r.message = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.ended, r.message = "fatal", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRedisWithoutServer(t *testing.T) {
	t.Parallel()

	tests := []struct {
		ci   string
		want string
	}{
		{"", "skip"},
		{"false", "skip"},
		{"true", "fatal"},
	}
	for _, tt := range tests {
		t.Run("CI="+tt.ci, func(t *testing.T) {
			t.Parallel()
			rec := &recordingTB{TB: t}
			done := make(chan struct{})
			go func() {
				defer close(done)
				startForTest(rec, func(string) string { return tt.ci }, RedisOptions{Binary: "/nonexistent/redis-server"})
			}()
			<-done
			require.Equal(t, tt.want, rec.ended)
			require.Contains(t, rec.message, "apt-get install redis-server")
		})
	}
}
