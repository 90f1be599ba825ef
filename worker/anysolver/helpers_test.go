package anysolver_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// testKey is every test client's API key; requireNoKey checks it never shows in an error.
const testKey = "sk-test-5ecret-c0ffee-0123456789"

var tokenTask = map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://example.com", "websiteKey": "6Le-site-key"}

// bundle is one fake AnySolver on loopback and a client for it.
type bundle struct {
	fake   *anysolvertest.Server
	ts     *httptest.Server
	client *anysolver.Client
	rt     *countingTransport
}

// setup starts a fake with opts and a client with cfg (BaseURL, APIKey and Transport filled in).
func setup(t *testing.T, opts anysolvertest.Options, cfg anysolver.Config) *bundle {
	t.Helper()
	fake, ts := anysolvertest.NewServer(opts)
	t.Cleanup(ts.Close)
	t.Cleanup(fake.Close) // runs first: releases hung handlers so ts.Close does not wait
	rt := &countingTransport{base: http.DefaultTransport.(*http.Transport).Clone()}
	t.Cleanup(rt.CloseIdleConnections)
	cfg.BaseURL, cfg.Transport = ts.URL, rt
	if cfg.APIKey == "" {
		cfg.APIKey = testKey
	}
	c, err := anysolver.New(cfg)
	require.NoError(t, err)
	return &bundle{fake: fake, ts: ts, client: c, rt: rt}
}

// requireNoKey fails if the API key shows in err's text.
func requireNoKey(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	require.NotContains(t, err.Error(), testKey)
}

// requireTransport checks err is a TransportError of the given kind and call.
func requireTransport(t *testing.T, err error, call classify.Call, f classify.Failure, status int) *anysolver.TransportError {
	t.Helper()
	requireNoKey(t, err)
	var te *anysolver.TransportError
	require.ErrorAs(t, err, &te, "got %v", err)
	require.Equal(t, call, te.Call)
	require.Equal(t, f, te.Failure, "got %v", err)
	require.Equal(t, status, te.HTTPStatus)
	ce, ok := anysolver.AsClassifyError(err)
	require.True(t, ok)
	require.Equal(t, classify.Error{Call: call, Failure: f, HTTPStatus: status}, ce)
	return te
}

// requireAPI checks err is an APIError with the given code and errorId.
func requireAPI(t *testing.T, err error, call classify.Call, code string, id int) *anysolver.APIError {
	t.Helper()
	requireNoKey(t, err)
	var ae *anysolver.APIError
	require.ErrorAs(t, err, &ae, "got %v", err)
	require.Equal(t, call, ae.Call)
	require.Equal(t, code, ae.ErrorCode)
	require.Equal(t, id, ae.ErrorID)
	ce, ok := anysolver.AsClassifyError(err)
	require.True(t, ok)
	require.Equal(t, code, ce.ErrorCode)
	require.Equal(t, classify.FailureNone, ce.Failure)
	return ae
}

func seedID(t *testing.T, code string) int {
	t.Helper()
	for _, c := range classify.SeedCodes() {
		if c.ErrorCode == code {
			return c.ErrorID
		}
	}
	t.Fatalf("%s is not a seed code", code)
	return 0
}

// ctxT is the test's context with a hang guard: a call that outlives it failed the test, however
// slowly a busy machine ran it.
func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// countingTransport counts the answer body bytes the client reads.
type countingTransport struct {
	base *http.Transport
	read atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.base.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.read}
	}
	return resp, err
}

func (c *countingTransport) CloseIdleConnections() { c.base.CloseIdleConnections() }

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// handlerClient is a client for a hand-written server, for answers the fake never gives.
func handlerClient(t *testing.T, h http.HandlerFunc) *anysolver.Client {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	c, err := anysolver.New(anysolver.Config{BaseURL: ts.URL, APIKey: testKey, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

func isTransport(err error) bool {
	var te *anysolver.TransportError
	return errors.As(err, &te)
}
