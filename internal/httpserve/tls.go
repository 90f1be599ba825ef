package httpserve

import (
	"crypto/tls"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertFiles serves a certificate and key from files, read again when either file changes (a
// certificate renewed in place, as cert-manager does), so a renewal needs no restart. A file
// that does not read keeps the certificate already loaded, and says so in the log once per new
// trouble. The gateway's port and the worker's HTTP side both serve TLS through it.
type CertFiles struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime [2]time.Time
	failed  string // the last reload error logged
}

// LoadCertFiles reads the pair once, so that a wrong path or a key that does not match its
// certificate stops the start; the error names both files.
func LoadCertFiles(certFile, keyFile string, log *slog.Logger) (*CertFiles, error) {
	if log == nil {
		log = slog.Default()
	}
	c := &CertFiles{certFile: certFile, keyFile: keyFile, log: log}
	if _, err := c.Certificate(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *CertFiles) stamps() ([2]time.Time, error) {
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

// Certificate reads the pair again when either file's modification time changed since the last
// read and returns the certificate to serve: the new one, or the one loaded before when the
// files do not read (an error only when nothing was ever loaded).
func (c *CertFiles) Certificate() (*tls.Certificate, error) {
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
	err = fmt.Errorf("TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	if c.cert == nil {
		return nil, err
	}
	if msg := err.Error(); msg != c.failed { // once per new trouble, not once per handshake
		c.failed = msg
		c.log.Warn("keeping the TLS certificate loaded before", "err", err)
	}
	return c.cert, nil
}

// TLSConfig serves the pair with TLS 1.2 or newer, reading the files again on a handshake after
// they changed.
func (c *CertFiles) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return c.Certificate()
		},
	}
}
