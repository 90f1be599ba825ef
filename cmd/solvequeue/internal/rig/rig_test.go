package rig

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// quick is a fake that solves every task at once.
func quick(anysolvertest.Task) anysolvertest.Behavior { return anysolvertest.Behavior{} }

func TestPipelineSolves(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		redis    func(t *testing.T) RedisOptions
		separate bool
		where    string
		own      bool
	}{
		{"miniredis, shared connection", func(*testing.T) RedisOptions { return RedisOptions{Embedded: MiniRedis} }, false, "in-process Redis (miniredis)", true},
		{"miniredis, separate connections", func(*testing.T) RedisOptions { return RedisOptions{Embedded: MiniRedis} }, true, "in-process Redis (miniredis)", true},
		{"redis-server by URL", func(t *testing.T) RedisOptions {
			return RedisOptions{URL: enqueuetest.Redis(t).URL()}
		}, true, "Redis at redis://127.0.0.1:", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			r, err := OpenRedis(ctx, tt.redis(t))
			require.NoError(t, err)
			defer func() { require.NoError(t, r.Close()) }()
			require.True(t, strings.HasPrefix(r.Where, tt.where), r.Where)
			require.Equal(t, tt.own, r.Own())

			p, err := New(ctx, r, Options{
				Fake: anysolvertest.Options{Script: quick},
				Worker: worker.Config{Queues: map[string]int{"rig": 1}, Poll: worker.PollConfig{Fixed: true, Interval: 100 * time.Millisecond},
					Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
				SeparateConnections: tt.separate,
			})
			require.NoError(t, err)
			require.NoError(t, p.Start(ctx))
			sub, err := p.Producer.SubmitJob(ctx, enqueue.Job{ID: "rig-1", Queue: "rig", Task: map[string]any{
				"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://rig.example", "websiteKey": "k"}})
			require.NoError(t, err)
			out, err := p.Producer.WaitIn(ctx, sub.Queue, sub.ID)
			require.NoError(t, err)
			require.Equal(t, enqueue.StateSolved, out.State)
			require.Equal(t, 1, p.Fake.Stats().Created)

			require.NoError(t, p.Close())
			require.NoError(t, p.Close(), "a second Close is a no-op")
			_, err = http.Post(p.Fake.URL+"/getBalance", "application/json", strings.NewReader("{}"))
			require.Error(t, err, "the fake is no longer served")
		})
	}
}

func TestOpenRedisErrors(t *testing.T) {
	t.Parallel()
	_, err := OpenRedis(t.Context(), RedisOptions{URL: "redis://:secret@127.0.0.1:1/0"})
	require.ErrorContains(t, err, "no Redis at")
	require.NotContains(t, err.Error(), "secret", "the password is redacted")
}
