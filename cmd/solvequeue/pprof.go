package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/solvequeue/solvequeue/worker/monitor"
)

// servePprof serves net/http/pprof's handlers on addr (a mux of its own, not the default one) and
// returns the address it listens on and a function that stops it. addr must be a loopback address:
// the profiles show the process's memory, secrets included.
func servePprof(addr string) (string, func(), error) {
	if !monitor.IsLoopback(addr) {
		return "", nil, fmt.Errorf("%s is not a loopback address: the profiles show the process's memory, secrets included", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}, nil
}
