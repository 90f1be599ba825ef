package httpserve_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/httpserve"
)

// writePair writes a self-signed certificate for 127.0.0.1 with serial and its key into dir,
// dated a minute after the files before it so that a reload sees them change, and returns the
// paths.
func writePair(t *testing.T, dir string, serial int64) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "httpserve test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certFile, keyFile = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	stamp := time.Now().Add(time.Duration(serial) * time.Minute)
	require.NoError(t, os.Chtimes(certFile, stamp, stamp))
	require.NoError(t, os.Chtimes(keyFile, stamp, stamp))
	return certFile, keyFile
}

func servedSerial(t *testing.T, c *httpserve.CertFiles) int64 {
	t.Helper()
	cert, err := c.Certificate()
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	require.NoError(t, err)
	return leaf.SerialNumber.Int64()
}

// TestCertFilesReload: a pair replaced in place is served from the next read; a pair that stops
// reading keeps the one loaded before; a bad pair at start is refused naming its files.
func TestCertFilesReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	certFile, keyFile := writePair(t, dir, 1)
	c, err := httpserve.LoadCertFiles(certFile, keyFile, log)
	require.NoError(t, err)
	require.Equal(t, int64(1), servedSerial(t, c))
	require.Equal(t, uint16(0x0303), c.TLSConfig().MinVersion, "TLS 1.2 or newer")

	writePair(t, dir, 2)
	require.Equal(t, int64(2), servedSerial(t, c), "renewed in place")

	require.NoError(t, os.WriteFile(keyFile, []byte("not a key"), 0o600))
	require.Equal(t, int64(2), servedSerial(t, c), "a broken renewal keeps the pair loaded before")

	tests := []struct {
		name, cert, key, want string
	}{
		{"swapped", keyFile, certFile, "TLS certificate " + keyFile + " and key " + certFile},
		{"missing key", certFile, filepath.Join(dir, "absent.key"), "absent.key"},
		{"broken key", certFile, keyFile, keyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := httpserve.LoadCertFiles(tt.cert, tt.key, log)
			require.ErrorContains(t, err, tt.want)
		})
	}
}
