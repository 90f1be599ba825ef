package monitor

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certFiles serves a certificate and key from files, read again when either file changes (a
// certificate renewed in place, as cert-manager does), so a renewal needs no restart. A file
// that does not read keeps the certificate already loaded, and says so in the log.
type certFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime [2]time.Time
	failed  string // the last reload error logged
}

// loadCertFiles reads the pair once, so that a wrong path or a key that does not match its
// certificate stops the start.
func loadCertFiles(certFile, keyFile string, log *slog.Logger) (*certFiles, error) {
	c := &certFiles{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.reload(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *certFiles) stamps() ([2]time.Time, error) {
	var out [2]time.Time
	for i, name := range []string{c.certFile, c.keyFile} {
		st, err := os.Stat(name)
		if err != nil {
			return out, err
		}
		out[i] = st.ModTime()
	}
	return out, nil
}

// reload reads the pair when it changed since the last read and returns the certificate.
func (c *certFiles) reload() (*tls.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	stamps, err := c.stamps()
	if err == nil && c.cert != nil && stamps == c.modTime {
		return c.cert, nil
	}
	if err == nil {
		var cert tls.Certificate
		if cert, err = tls.LoadX509KeyPair(c.certFile, c.keyFile); err == nil {
			c.cert, c.modTime, c.failed = &cert, stamps, ""
			return c.cert, nil
		}
	}
	err = fmt.Errorf("monitor: TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	if c.cert == nil {
		return nil, err
	}
	if msg := err.Error(); msg != c.failed { // once per new trouble, not once per handshake
		c.failed = msg
		c.log.Warn("monitor: keeping the TLS certificate loaded before", "err", err)
	}
	return c.cert, nil
}

// tlsConfig serves the pair with TLS 1.2 or newer.
func (c *certFiles) tlsConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.reload()
		},
	}
}
