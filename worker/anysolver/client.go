// Package anysolver is the HTTP client for the AnySolver captcha API (createTask, getTaskResult,
// getBalance), turning every failure into an *APIError or a *TransportError for the classifier.
// It makes one call per method call: retrying, polling and deciding what an error means belong to the worker.
package anysolver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/solvequeue/solvequeue/classify"
)

// DefaultBaseURL is AnySolver's production API.
const DefaultBaseURL = "https://api.anysolver.com"

// Defaults for Config.
const (
	DefaultTimeout         = 30 * time.Second
	DefaultMaxBodyBytes    = 1 << 20
	DefaultMaxConnsPerHost = 512
)

// userAgent is sent with every request.
const userAgent = "solvequeue"

// Config configures a Client. The zero value of every field but APIKey means its default.
type Config struct {
	// BaseURL is the API's root, an http or https URL; calls go to BaseURL/createTask and so on.
	// The CLI reads it from ANYSOLVER_URL. Defaults to DefaultBaseURL.
	BaseURL string
	// APIKey is the account's clientKey. Required. It is sent in request bodies only and never
	// appears in an error string, a log line or String() output.
	APIKey string
	// Timeout bounds one call: connecting, the request, and reading the whole answer.
	// Defaults to DefaultTimeout.
	Timeout time.Duration
	// MaxBodyBytes bounds an answer; a longer one fails with FailureOversizedBody after at most
	// MaxBodyBytes+1 bytes were read. Defaults to DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// MaxConnsPerHost caps connections to AnySolver; calls beyond it wait for a free one.
	// Defaults to DefaultMaxConnsPerHost.
	MaxConnsPerHost int
	// Transport sends the requests, e.g. to count or record them in tests. Defaults to one
	// tuned *http.Transport per Client (keep-alive, idle pool as large as MaxConnsPerHost,
	// HTTP/2 when offered, dial/TLS/header timeouts within Timeout).
	Transport http.RoundTripper
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.BaseURL == "" {
		c.BaseURL = DefaultBaseURL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxConnsPerHost == 0 {
		c.MaxConnsPerHost = DefaultMaxConnsPerHost
	}
	return c
}

// validate checks a Config that WithDefaults filled and returns its base URL.
func (c Config) validate() (*url.URL, error) {
	if c.APIKey == "" {
		return nil, errors.New("anysolver: Config.APIKey is required: set it (the CLI reads ANYSOLVER_API_KEY)")
	}
	if err := CheckAPIKey(c.APIKey); err != nil {
		return nil, fmt.Errorf("anysolver: Config.APIKey %w", err)
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("anysolver: Config.BaseURL must be an http or https URL without query, such as %s, got %q",
			DefaultBaseURL, redactKey(redactURLPassword(c.BaseURL, u, err), c.APIKey))
	}
	if c.Timeout < 0 {
		return nil, fmt.Errorf("anysolver: Config.Timeout must be positive, got %s", c.Timeout)
	}
	if c.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("anysolver: Config.MaxBodyBytes must be positive, got %d", c.MaxBodyBytes)
	}
	if c.MaxConnsPerHost < 0 {
		return nil, fmt.Errorf("anysolver: Config.MaxConnsPerHost must be positive, got %d", c.MaxConnsPerHost)
	}
	return u, nil
}

// CheckAPIKey says what is wrong with a non-empty key that no AnySolver account can have: one
// of only white space, or one with white space around it (a newline copied with it). The
// error never quotes the key. New checks it; the CLI checks it to name its flag.
func CheckAPIKey(key string) error {
	switch trimmed := strings.TrimSpace(key); {
	case trimmed == "":
		return errors.New("is only white space: give the account's key")
	case trimmed != key:
		return errors.New("starts or ends with white space, which no AnySolver key has: was a space or newline copied with it?")
	}
	return nil
}

// String describes c with the API key redacted.
func (c Config) String() string {
	return fmt.Sprintf("anysolver.Config{BaseURL: %q, APIKey: %s, Timeout: %s, MaxBodyBytes: %d, MaxConnsPerHost: %d}",
		redactKey(c.BaseURL, c.APIKey), redactedMark(c.APIKey), c.Timeout, c.MaxBodyBytes, c.MaxConnsPerHost)
}

// GoString is String, so %#v does not print the key either.
func (c Config) GoString() string { return c.String() }

// Client calls AnySolver. It is safe for concurrent use; make one per process and reuse it,
// so its connections are reused.
type Client struct {
	baseURL string // as configured, for display, password redacted
	key     string
	keyJSON []byte         // the key as a JSON string, for hand-built bodies
	keyText *regexp.Regexp // the key as a server may echo it: any case, escaped or not
	timeout time.Duration
	maxBody int64
	conns   int // Config.MaxConnsPerHost
	http    *http.Client
	urls    map[classify.Call]string
	balance []byte // the whole getBalance body
}

// New checks cfg (after WithDefaults) and returns a Client. Its errors name the field at fault.
func New(cfg Config) (*Client, error) {
	cfg = cfg.WithDefaults()
	u, err := cfg.validate()
	if err != nil {
		return nil, err
	}
	rt := cfg.Transport
	if rt == nil {
		rt = newTransport(cfg)
	}
	keyJSON, _ := json.Marshal(cfg.APIKey) // a string always encodes
	base := strings.TrimRight(u.String(), "/")
	c := &Client{
		baseURL: strings.TrimRight(u.Redacted(), "/"),
		key:     cfg.APIKey,
		keyJSON: keyJSON,
		keyText: keyPattern(cfg.APIKey),
		timeout: cfg.Timeout,
		maxBody: cfg.MaxBodyBytes,
		conns:   cfg.MaxConnsPerHost,
		http: &http.Client{
			Transport: rt,
			// A redirect would re-send the key to another address: treat 3xx as an answer.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		urls: map[classify.Call]string{},
	}
	for _, call := range []classify.Call{classify.CallCreateTask, classify.CallGetTaskResult, classify.CallGetBalance} {
		c.urls[call] = base + "/" + string(call)
	}
	c.balance = append(append([]byte(`{"clientKey":`), keyJSON...), '}')
	return c, nil
}

// MaxConnsPerHost returns how many calls the Client sends to AnySolver at once (its
// Config.MaxConnsPerHost); calls beyond it wait for a connection.
func (c *Client) MaxConnsPerHost() int { return c.conns }

// BaseURL returns the API root calls go to, without a trailing slash (a password in it redacted).
func (c *Client) BaseURL() string { return c.baseURL }

// String describes c with the API key redacted.
func (c *Client) String() string {
	return fmt.Sprintf("anysolver.Client{BaseURL: %q, APIKey: %s}", c.baseURL, redactedMark(c.key))
}

// GoString is String, so %#v does not print the key either.
func (c *Client) GoString() string { return c.String() }

// CloseIdleConnections closes the Client's idle keep-alive connections, e.g. at shutdown.
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// do makes one call: POST payload to the call's URL within the Client's Timeout, read the answer
// (bounded) and parse it. Errors are *APIError, *TransportError, or, when ctx itself ended,
// an error wrapping ctx.Err() that is neither.
func (c *Client) do(ctx context.Context, call classify.Call, payload []byte) (answer, error) {
	if ctx.Err() != nil {
		return answer{}, callerDone(ctx, call)
	}
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, c.urls[call], bytes.NewReader(payload))
	if err != nil {
		return answer{}, fmt.Errorf("anysolver: %s: build request: %w", call, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		return answer{}, c.failed(ctx, callCtx, call, 0, err)
	}
	body, err := readBody(resp, c.maxBody)
	closeBody(resp.Body, err == nil)
	if errors.Is(err, errOversized) {
		return answer{}, &TransportError{Call: call, Failure: classify.FailureOversizedBody, HTTPStatus: resp.StatusCode, Err: err}
	}
	if err != nil {
		return answer{}, c.failed(ctx, callCtx, call, resp.StatusCode, err)
	}
	a, err := parseAnswer(body, call, resp.StatusCode, c.scrub)
	if err != nil {
		return answer{}, c.redact(err)
	}
	return a, nil
}

// failed turns a failed round trip or body read into the caller's own context error, or a TransportError.
func (c *Client) failed(ctx, callCtx context.Context, call classify.Call, status int, err error) error {
	if ctx.Err() != nil {
		return callerDone(ctx, call)
	}
	return c.redact(&TransportError{Call: call, Failure: failureOf(callCtx, err), HTTPStatus: status, Err: err})
}

// callerDone is the error for a call whose caller's context ended: it wraps ctx.Err() (and the
// cause, if one was given) and is not a TransportError, so shutdown is not taken for an outage.
func callerDone(ctx context.Context, call classify.Call) error {
	err := ctx.Err()
	if cause := context.Cause(ctx); cause != nil && cause != err {
		return fmt.Errorf("anysolver: %s: %w (%w)", call, err, cause)
	}
	return fmt.Errorf("anysolver: %s: %w", call, err)
}
