package anysolver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/solvequeue/solvequeue/classify"
)

// Connection-level limits of the default transport.
const (
	dialTimeout         = 10 * time.Second
	tlsHandshakeTimeout = 10 * time.Second
	idleConnTimeout     = 90 * time.Second
	minIdleConnsPerHost = 256
	drainLimit          = 64 << 10 // bytes read from an unread body to keep its connection
)

// newTransport builds the one tuned transport a Client uses by default:
// keep-alive with an idle pool as large as the connection cap (so a burst of
// polls does not churn connections), HTTP/2 when the server offers it, and
// dial, TLS and header timeouts no longer than the per-call Timeout.
func newTransport(cfg Config) *http.Transport {
	idle := max(cfg.MaxConnsPerHost, minIdleConnsPerHost)
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: min(dialTimeout, cfg.Timeout), KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          idle,
		MaxIdleConnsPerHost:   idle,
		MaxConnsPerHost:       cfg.MaxConnsPerHost,
		IdleConnTimeout:       idleConnTimeout,
		TLSHandshakeTimeout:   min(tlsHandshakeTimeout, cfg.Timeout),
		ResponseHeaderTimeout: cfg.Timeout,
		ExpectContinueTimeout: time.Second,
	}
}

// errOversized marks a body longer than MaxBodyBytes.
var errOversized = errors.New("answer body is larger than MaxBodyBytes")

// readBody reads at most limit bytes of resp's body. A declared or actual
// length over limit gives errOversized after reading no more than limit+1
// bytes, so a 10 MB or endless body costs at most limit+1 bytes.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if resp.ContentLength > limit {
		return nil, errOversized
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(body)) > limit {
		return nil, errOversized
	}
	return body, nil
}

// closeBody drains a little of what is left (so the connection can be reused)
// and closes the body. An oversized body is closed without draining: its
// connection is dropped instead of read to the end.
func closeBody(body io.ReadCloser, drain bool) {
	if drain {
		_, _ = io.CopyN(io.Discard, body, drainLimit)
	}
	_ = body.Close()
}

// failureOf names the transport failure behind err, a failed round trip or
// body read on a call whose own context is callCtx.
func failureOf(callCtx context.Context, err error) classify.Failure {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(callCtx.Err(), context.DeadlineExceeded) {
		return classify.FailureTimeout
	}
	var netErr net.Error
	if errors.As(err, &netErr) && netErr.Timeout() {
		return classify.FailureTimeout
	}
	return classify.FailureConnection
}
