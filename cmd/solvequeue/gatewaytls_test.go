package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
)

// TestGatewayTLS runs `solvequeue gateway --tls-cert --tls-key` with a self-signed certificate
// made here and calls createTask over HTTPS with a client that trusts it; then replaces the pair
// in place and sees the new certificate served without a restart.
func TestGatewayTLS(t *testing.T) {
	t.Parallel()
	url, _ := cliRedis(t)
	dir := t.TempDir()
	certFile, keyFile, pool := writeTestCert(t, dir, big.NewInt(1))
	addr := freeLoopbackAddr(t)

	logs := startGatewayInProcess(t, url, "serving AnySolver's API", "--addr", addr, "--tls-cert", certFile, "--tls-key", keyFile)
	require.Contains(t, logs.String(), "https://"+addr+"/")

	// A new connection per request, so that each one sees the certificate served now.
	client := func(pool *x509.CertPool) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	createTask := func(c *http.Client) (*http.Response, map[string]any) {
		body := `{"clientKey":"k","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":"6Le-tls"}}`
		resp, err := c.Post("https://"+addr+"/createTask", "application/json", bytes.NewBufferString(body))
		require.NoError(t, err)
		defer resp.Body.Close()
		var answer map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&answer))
		return resp, answer
	}
	resp, answer := createTask(client(pool))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.EqualValues(t, 0, answer["errorId"], "%v", answer)
	require.Positive(t, answer["taskId"], "%v", answer)
	require.Equal(t, int64(1), resp.TLS.PeerCertificates[0].SerialNumber.Int64())

	_, err := client(x509.NewCertPool()).Post("https://"+addr+"/createTask", "application/json", bytes.NewBufferString("{}"))
	require.Error(t, err, "a client that does not trust the certificate fails the handshake")

	// Renewed in place. Stamped a minute later, since a file system with a coarse clock could
	// give the new files the old files' modification time.
	_, _, pool2 := writeTestCert(t, dir, big.NewInt(2))
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(certFile, later, later))
	require.NoError(t, os.Chtimes(keyFile, later, later))
	both := pool.Clone()
	both.AppendCertsFromPEM(mustRead(t, certFile))
	var serial int64
	for range 200 { // bounded: the next handshake already serves it
		resp, answer = createTask(client(both))
		if serial = resp.TLS.PeerCertificates[0].SerialNumber.Int64(); serial == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	require.Equal(t, int64(2), serial, "the renewed certificate is served without a restart")
	require.EqualValues(t, 0, answer["errorId"], "%v", answer)
	resp, _ = createTask(client(pool2))
	require.Equal(t, int64(2), resp.TLS.PeerCertificates[0].SerialNumber.Int64())
}

// TestGatewayTLSRefused: a pair that does not load, or half a pair, stops the start with exit
// status 2 and a message naming the file, before anything reaches Redis.
func TestGatewayTLSRefused(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	certFile, keyFile, _ := testCert(t)
	missing := filepath.Join(t.TempDir(), "absent.crt")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"swapped files", []string{"gateway", "--tls-cert", keyFile, "--tls-key", certFile}, "TLS certificate " + keyFile + " and key " + certFile},
		{"a missing certificate", []string{"gateway", "--tls-cert", missing, "--tls-key", keyFile}, missing},
		{"a certificate without its key", []string{"gateway", "--tls-cert", certFile}, "set both --tls-cert and --tls-key"},
		{"on a worker's gateway too", []string{"worker", "--api-key", "k", "--gateway", "127.0.0.1:0", "--tls-cert", keyFile, "--tls-key", certFile}, "TLS certificate " + keyFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := cliRun(t, map[string]string{"REDIS_URL": url}, "", tt.args...)
			require.Equal(t, 2, res.code, "stderr: %s", res.stderr)
			require.Contains(t, res.stderr, tt.want)
		})
	}
	cliRequireEmpty(t, rc)
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(t, err)
	return data
}

// startGatewayInProcess runs `solvequeue gateway` in this process on the Redis at redisURL with
// args (text logs), stops it when the test ends, and returns its log once a line contains ready.
func startGatewayInProcess(t *testing.T, redisURL, ready string, args ...string) *enqueuetest.LogBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	logs := &enqueuetest.LogBuffer{}
	done := make(chan int, 1)
	go func() {
		env := &Env{Stdin: bytes.NewReader(nil), Stdout: logs, Stderr: logs,
			Getenv: func(k string) string { return map[string]string{"REDIS_URL": redisURL}[k] }}
		done <- run(ctx, env, append(append([]string{"gateway"}, args...), "--log-format", "text"))
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), ready) },
		hangGuard, 20*time.Millisecond, "the gateway did not start:\n%s", logs.String())
	return logs
}
