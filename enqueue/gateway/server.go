package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/solvequeue/solvequeue/internal/httpserve"
)

// Timeouts of the gateway's HTTP server. A client that sends its headers or body slower than
// this (slowloris) is cut, and so is one that reads its answer too slowly.
const (
	ReadHeaderTimeoutDefault = 5 * time.Second
	ReadTimeoutDefault       = 30 * time.Second // the headers and a body of --max-body
	WriteTimeoutDefault      = 30 * time.Second // from the end of the headers to the end of the answer
	IdleTimeoutDefault       = 2 * time.Minute  // keep-alive connections between requests
	MaxHeaderBytesDefault    = 32 << 10
	// ShutdownTimeout bounds the graceful stop after ListenAndServe's ctx ends.
	ShutdownTimeout = 5 * time.Second
)

// ErrKeysRequired is returned (wrapped, saying what to do) by ListenAndServe for a gateway
// without keys on an address other hosts can reach.
var ErrKeysRequired = errors.New("the gateway needs a keys file on a non-loopback address")

// ServerConfig sets the HTTP server's limits; a zero field takes its default.
type ServerConfig struct {
	// Addr is the listen address, e.g. "127.0.0.1:8090" or ":8090". Required.
	Addr string
	// ReadHeaderTimeout defaults to 5 s, ReadTimeout to 30 s, WriteTimeout to 30 s,
	// IdleTimeout to 2 min and MaxHeaderBytes to 32 KiB.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	MaxHeaderBytes                                            int
	// TLSCertFile and TLSKeyFile (PEM) make ListenAndServe serve HTTPS (TLS 1.2 or newer), for
	// clients that speak only HTTPS (2captcha's). The pair is read again when either file
	// changes, so a renewal needs no restart. Give both or neither.
	TLSCertFile, TLSKeyFile string
	// Logger receives the server's own errors (TLS, broken connections). Defaults to slog.Default().
	Logger *slog.Logger
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.ReadHeaderTimeout <= 0 {
		c.ReadHeaderTimeout = ReadHeaderTimeoutDefault
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = ReadTimeoutDefault
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = WriteTimeoutDefault
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = IdleTimeoutDefault
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = MaxHeaderBytesDefault
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// NewServer returns the http.Server that serves h with the gateway's limits.
func NewServer(h http.Handler, cfg ServerConfig) *http.Server {
	cfg = cfg.withDefaults()
	return &http.Server{
		Addr:              cfg.Addr,
		Handler:           h,
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
}

// CheckAddr refuses a gateway without keys on an address other hosts can reach.
func CheckAddr(addr string, h *Handler) error {
	if h.Open() && !IsLoopback(addr) {
		return fmt.Errorf("%w: --addr %s is reachable from other hosts and any clientKey would be accepted: "+
			"give --keys FILE (see the README's gateway section), or listen on 127.0.0.1", ErrKeysRequired, addr)
	}
	return nil
}

// ListenAndServe listens on cfg.Addr (":0" picks a free port), serves h in a goroutine (over
// TLS when cfg names a certificate) and returns the address it listens on. It refuses, with
// ErrKeysRequired, a handler without keys on a non-loopback address, and a certificate and key
// that do not load, naming the files. The server stops when ctx ends (waiting at most
// ShutdownTimeout for requests in flight) or when stop is called, whichever comes first.
func ListenAndServe(ctx context.Context, h *Handler, cfg ServerConfig) (addr string, stop func(context.Context) error, err error) {
	if err := CheckAddr(cfg.Addr, h); err != nil {
		return "", nil, err
	}
	cfg = cfg.withDefaults()
	certs, err := loadTLS(cfg)
	if err != nil {
		return "", nil, err
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return "", nil, fmt.Errorf("gateway: listen on %s: %w (is another process using that port?)", cfg.Addr, err)
	}
	if certs != nil {
		ln = tls.NewListener(ln, certs.TLSConfig())
	}
	srv := NewServer(h, cfg)
	addr, stop = httpserve.Serve(ctx, srv, ln, ShutdownTimeout, cfg.Logger, "gateway")
	return addr, stop, nil
}

func loadTLS(cfg ServerConfig) (*httpserve.CertFiles, error) {
	if cfg.TLSCertFile == "" && cfg.TLSKeyFile == "" {
		return nil, nil
	}
	if cfg.TLSCertFile == "" || cfg.TLSKeyFile == "" {
		return nil, errors.New("gateway: set both --tls-cert and --tls-key, or neither")
	}
	certs, err := httpserve.LoadCertFiles(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Logger.With("component", "gateway"))
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	return certs, nil
}

// IsLoopback reports whether a listen address is reachable from this host only:
// "127.0.0.1:8090", "[::1]:8090" and "localhost:8090" are; ":8090", "0.0.0.0:8090" and any
// other address are not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
