package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// healthz answers 200 "ok" while the process serves HTTP: liveness, no auth, no Redis.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

type readyBody struct {
	Ready    bool     `json:"ready"`
	Breaker  any      `json:"breaker,omitempty"`
	Warnings []string `json:"warnings,omitempty"`
	Error    string   `json:"error,omitempty"`
}

// readyz runs cfg.Ready within ReadyTimeout: 200 {"ready":true,"breaker":...} or
// 503 {"ready":false,"error":"..."} with secrets cut from the error text. A ready answer also
// carries cfg.Warnings' lines, secrets cut, as "warnings".
func readyz(cfg Config) http.Handler {
	secrets := []string{redisPassword(cfg.Redis), cfg.Password, cfg.MetricsToken}
	// A change is logged once; a probe every few seconds during an outage is not a line each.
	var notReady atomic.Bool
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), ReadyTimeout)
		defer cancel()
		v, err := cfg.Ready(ctx)
		body, status := readyBody{Ready: true, Breaker: v}, http.StatusOK
		if err != nil {
			msg := redactError(err.Error(), secrets...)
			level := slog.LevelDebug
			if !notReady.Swap(true) {
				level = slog.LevelWarn
			}
			cfg.Logger.Log(r.Context(), level, "monitor: not ready", "err", msg)
			body, status = readyBody{Error: msg}, http.StatusServiceUnavailable
		} else {
			if notReady.Swap(false) {
				cfg.Logger.Info("monitor: ready again")
			}
			if cfg.Warnings != nil {
				for _, w := range cfg.Warnings(ctx) {
					body.Warnings = append(body.Warnings, redactError(w, secrets...))
				}
			}
		}
		out, merr := json.Marshal(body)
		if merr != nil {
			out, status = []byte(`{"ready":false,"error":"readiness value is not JSON"}`), http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(status)
		_, _ = w.Write(append(out, '\n'))
	})
}

// pingAndReadBreaker is the default readiness: Redis answers, and the breaker's state is shown
// (an open breaker pauses queues but leaves the worker ready).
func pingAndReadBreaker(ctx context.Context, rc redis.UniversalClient) (any, error) {
	if err := rc.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis ping: %w", err)
	}
	state, err := breaker.Read(ctx, rc)
	if err != nil {
		return nil, err
	}
	return state, nil
}

// redactError cuts URL passwords (as redact.Text does everywhere) and the given secrets
// out of an error text.
func redactError(msg string, secrets ...string) string {
	msg = redact.Text(msg)
	for _, s := range secrets {
		if s != "" { // of any length: these are the operator's own passwords, not words of a job
			msg = strings.ReplaceAll(msg, s, redact.Marker)
		}
	}
	return msg
}

// redisPassword returns the password rc authenticates with, to keep it out of error texts.
func redisPassword(rc redis.UniversalClient) string {
	switch c := rc.(type) {
	case *redis.Client:
		return c.Options().Password
	case *redis.ClusterClient:
		return c.Options().Password
	case *redis.Ring:
		return c.Options().Password
	}
	return ""
}
