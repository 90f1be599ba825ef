package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/console"
	"github.com/solvequeue/solvequeue/worker/monitor"
)

// testCert writes a self-signed certificate for 127.0.0.1 and its key into a temporary folder
// and returns their paths and a pool that trusts it.
func testCert(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return writeTestCert(t, t.TempDir(), big.NewInt(time.Now().UnixNano()))
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 with serial, and its key, as
// tls.crt and tls.key in dir (replacing what is there, as a renewal in place does: written aside,
// then renamed) and returns their paths and a pool that trusts the certificate.
func writeTestCert(t *testing.T, dir string, serial *big.Int) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "solvequeue test"},
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
	for path, block := range map[string]*pem.Block{certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "PRIVATE KEY", Bytes: keyDER}} {
		aside := path + ".new"
		require.NoError(t, os.WriteFile(aside, pem.EncodeToMemory(block), 0o600))
		require.NoError(t, os.Rename(aside, path))
	}
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// httpDo sends one request with an optional Authorization header and returns the response's
// status, headers and body.
func httpDo(t *testing.T, c *http.Client, method, url, auth string, header map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, nil)
	require.NoError(t, err)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

// TestWorkerHTTPSide runs a worker whose HTTP side has credentials, a metrics token and TLS, and
// checks it from outside over a real TLS handshake: who may read and change what, the headers,
// and the slowdown after failed logins.
func TestWorkerHTTPSide(t *testing.T) {
	t.Parallel()
	const user, pass, token = "ops", "ui-password-4b1d", "scrape-token-9c2e"
	certFile, keyFile, pool := testCert(t)
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	w := s.startWorker(t, []string{"SOLVEQUEUE_HTTP_USER=" + user, "SOLVEQUEUE_HTTP_PASSWORD=" + pass,
		"SOLVEQUEUE_METRICS_TOKEN=" + token}, "--http", "127.0.0.1:0", "--http-tls-cert", certFile, "--http-tls-key", keyFile)
	base := httpBase(t, w)
	require.True(t, strings.HasPrefix(base, "https://127.0.0.1:"), base)
	_, err := s.client.Submit(t.Context(), recaptchaJob("http-side-1", "sq:id=http-side-1")) // the queue exists
	require.NoError(t, err)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	admin := "Basic " + basicAuth(user, pass)
	bearer := "Bearer " + token

	// The TLS handshake, and nothing in plain text.
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+monitor.HealthzPath, nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	require.NotNil(t, resp.TLS)
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
	require.Equal(t, "solvequeue test", resp.TLS.PeerCertificates[0].Subject.CommonName)
	_ = resp.Body.Close()
	plain := strings.Replace(base, "https://", "http://", 1)
	if resp, err := http.Get(plain + monitor.HealthzPath); err == nil {
		require.Equal(t, http.StatusBadRequest, resp.StatusCode)
		_ = resp.Body.Close()
	}

	// The scraper's token reads the metrics and readiness, nothing else.
	code, header, metrics := httpDo(t, c, http.MethodGet, base+monitor.MetricsPath, bearer, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, metrics, "solvequeue_dead_letters_limit 10000")
	require.Equal(t, "nosniff", header.Get("X-Content-Type-Options"))
	require.Contains(t, header.Get("Content-Security-Policy"), "default-src 'none'")
	code, _, _ = httpDo(t, c, http.MethodGet, base+monitor.ReadyzPath, bearer, nil)
	require.Equal(t, http.StatusOK, code)
	code, _, _ = httpDo(t, c, http.MethodGet, base+"/monitoring/api/queues", bearer, nil)
	require.Equal(t, http.StatusForbidden, code)
	const pause, resume = "/monitoring/api/queues/default:pause", "/monitoring/api/queues/default:resume"
	code, _, _ = httpDo(t, c, http.MethodPost, base+pause, bearer, nil)
	require.Equal(t, http.StatusForbidden, code)
	require.False(t, moneyPaused(t, s, "default"))

	// The user reads and, on loopback, changes.
	code, header, page := httpDo(t, c, http.MethodGet, base+"/monitoring/", admin, nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, header.Get("Content-Security-Policy"), "'sha256-")
	require.Contains(t, page, `FLAG_READ_ONLY="false"`)
	code, _, _ = httpDo(t, c, http.MethodPost, base+pause, admin, map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusNoContent, code)
	require.True(t, moneyPaused(t, s, "default"))
	code, _, _ = httpDo(t, c, http.MethodPost, base+resume, admin, map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusNoContent, code)
	// The console, beside it: the user sees it with its own policy; the token does not.
	code, header, page = httpDo(t, c, http.MethodGet, base+monitor.ConsolePath+"/", admin, nil)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, console.CSP, header.Get("Content-Security-Policy"))
	require.NotContains(t, page, `id="read-only"`)
	code, _, _ = httpDo(t, c, http.MethodGet, base+monitor.ConsolePath+"/", bearer, nil)
	require.Equal(t, http.StatusForbidden, code)

	// Guessing: five wrong tries are free, then the answer to a wrong one is held (and logged);
	// the right password still gets in at once.
	for range monitor.LoginFreeFailures + 1 {
		code, _, _ = httpDo(t, c, http.MethodGet, base+monitor.MetricsPath, "Basic "+basicAuth(user, "guess"), nil)
		require.Equal(t, http.StatusUnauthorized, code)
	}
	require.True(t, w.waitForLog("holding this client's answers", 10*time.Second))
	code, _, _ = httpDo(t, c, http.MethodGet, base+monitor.MetricsPath, admin, nil)
	require.Equal(t, http.StatusOK, code)

	// No secret in the worker's output.
	for _, secret := range []string{pass, token, s.apiKey} {
		require.NotContains(t, w.logs.String(), secret)
	}
}

// TestWorkerHTTPSideWithoutCredentials: on loopback without credentials the web UI may be read
// by this host and changes nothing.
func TestWorkerHTTPSideWithoutCredentials(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	w := s.startWorker(t, nil, "--http", "127.0.0.1:0")
	base := httpBase(t, w)
	_, err := s.client.Submit(t.Context(), recaptchaJob("http-open-1", "sq:id=http-open-1")) // the queue exists
	require.NoError(t, err)
	c := &http.Client{Timeout: 10 * time.Second}
	code, _, page := httpDo(t, c, http.MethodGet, base+"/monitoring/", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, `FLAG_READ_ONLY="true"`)
	code, _, body := httpDo(t, c, http.MethodPost, base+"/monitoring/api/queues/default:pause", "", map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, "changes need")
	require.False(t, moneyPaused(t, s, "default"))
	code, _, page = httpDo(t, c, http.MethodGet, base+monitor.ConsolePath+"/", "", nil)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, page, `id="read-only"`)
	require.Contains(t, page, "has no credentials, and changes (redrive, purge, breaker reset) always need them: "+
		"start the worker with SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD set", "the console says why it is read-only and how to allow changes")
	code, _, body = httpDo(t, c, http.MethodPost, base+monitor.ConsolePath+"/act", "", map[string]string{"Sec-Fetch-Site": "same-origin"})
	require.Equal(t, http.StatusForbidden, code)
	require.Contains(t, body, "changes need")
	code, _, _ = httpDo(t, c, http.MethodGet, base+monitor.MetricsPath, "", nil)
	require.Equal(t, http.StatusOK, code)
}

func TestWorkerHTTPFlagsRefused(t *testing.T) {
	t.Parallel()
	certFile, _, _ := testCert(t)
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"worker", "--http", "127.0.0.1:0", "--http-tls-cert", certFile}, "--http-tls-key"},
		{[]string{"worker", "--http", "127.0.0.1:0", "--http-user", "ops", "--http-password", "same", "--metrics-token", "same"}, "must differ"},
		{[]string{"worker", "--dlq-limit", "-1"}, "--dlq-limit"},
		{[]string{"gateway", "--http", "127.0.0.1:0", "--http-tls-key", certFile}, "--http-tls-key"},
		{[]string{"gateway", "--http", "127.0.0.1:0", "--http-user", "ops", "--http-password", "same", "--metrics-token", "same"}, "must differ"},
	} {
		_, stderr, code := runCLI(t, []string{"ANYSOLVER_API_KEY=k", "REDIS_URL=redis://127.0.0.1:1"}, nil, tt.args...)
		require.Equal(t, 2, code, stderr)
		require.Contains(t, stderr, tt.want)
	}
}

func basicAuth(user, pass string) string {
	return strings.TrimPrefix(func() string {
		r, _ := http.NewRequest(http.MethodGet, "http://x", nil)
		r.SetBasicAuth(user, pass)
		return r.Header.Get("Authorization")
	}(), "Basic ")
}
