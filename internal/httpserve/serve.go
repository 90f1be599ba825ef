// Package httpserve runs an http.Server on a listener until its context ends or it is stopped,
// and serves TLS from a certificate and key read again when they change: the one way the gateway
// and the worker's HTTP side serve. It owns the goroutine, the shutdown and the certificate
// reloads; the servers' handlers and limits are their own.
package httpserve

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Serve serves srv on ln in a goroutine and returns ln's address and a stop function. The server
// stops when ctx ends (waiting at most shutdownTimeout for requests in flight) or when stop is
// called, whichever comes first; stop waits until it has stopped and may be called more than once.
// A server that stops by itself is logged at error level under name.
func Serve(ctx context.Context, srv *http.Server, ln net.Listener, shutdownTimeout time.Duration, log *slog.Logger, name string) (addr string, stop func(context.Context) error) {
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(name+": stopped serving", "addr", ln.Addr().String(), "err", err)
		}
	}()
	var once sync.Once
	var stopErr error
	stop = func(ctx context.Context) error {
		once.Do(func() {
			stopErr = srv.Shutdown(ctx)
			<-served
		})
		return stopErr
	}
	go func() {
		select {
		case <-ctx.Done():
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
			defer cancel()
			_ = stop(sctx)
		case <-served:
		}
	}()
	return ln.Addr().String(), stop
}
