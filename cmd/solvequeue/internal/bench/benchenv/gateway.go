package benchenv

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// StartGateway serves the gateway with the keys file keysYAML on a free loopback port, over a
// Redis client of its own with poolSize connections and a Shared enqueue client, as `solvequeue
// gateway` builds it. stop shuts the server down and closes the client.
func (e *Env) StartGateway(ctx context.Context, poolSize int, keysYAML string) (addr string, stop func(), err error) {
	keys, err := gateway.ParseKeys("bench", []byte(keysYAML))
	if err != nil {
		return "", nil, fmt.Errorf("bench gateway keys: %w", err)
	}
	rc, err := e.OpenRedis(ctx, poolSize)
	if err != nil {
		return "", nil, err
	}
	fail := func(err error) (string, func(), error) {
		_ = rc.Close()
		return "", nil, err
	}
	client, err := enqueue.NewClient(enqueue.Config{Redis: rc, Shared: true})
	if err != nil {
		return fail(err)
	}
	h, err := gateway.NewHandler(gateway.Config{Client: client, Redis: rc, Keys: keys, Logger: e.QuietLogger()})
	if err != nil {
		return fail(err)
	}
	addr, shutdown, err := gateway.ListenAndServe(ctx, h, gateway.ServerConfig{Addr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return fail(err)
	}
	return addr, func() { _ = shutdown(context.WithoutCancel(ctx)); _ = rc.Close() }, nil
}
