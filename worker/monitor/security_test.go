package monitor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/worker/console"
)

// getWith fetches url with the given Authorization header ("" for none).
func getWith(t *testing.T, url, authorization string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, resp.Header, string(body)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

// TestMonitoringMetricsToken: the scraper's token reads /metrics and /readyz, and nothing else.
func TestMonitoringMetricsToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const token = "scrape-7f3e1c"
	s := serve(t, Config{Addr: "0.0.0.0:0", Redis: b.rc, Registry: b.reg, User: "ops", Password: "pw", MetricsToken: token})

	for _, path := range []string{MetricsPath, ReadyzPath} {
		status, _, body := getWith(t, s.URL+path, "Bearer "+token)
		require.Equal(t, http.StatusOK, status, "%s: %s", path, body)
		status, _, _ = getWith(t, s.URL+path, basic("ops", "pw"))
		require.Equal(t, http.StatusOK, status, "the user reads %s too", path)
	}
	for _, path := range []string{"/monitoring/", "/monitoring/api/queues", "/"} {
		status, _, _ := getWith(t, s.URL+path, "Bearer "+token)
		require.Equal(t, http.StatusForbidden, status, path)
	}
	require.Equal(t, http.StatusForbidden, post(t, s, pausePath, "", "", map[string]string{"Authorization": "Bearer " + token}))
	require.False(t, paused(t, b.rc))
	status, header, body := getWith(t, s.URL+MetricsPath, "Bearer wrong")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Contains(t, header.Get("WWW-Authenticate"), "Basic")
	require.Contains(t, body, "Bearer")
	status, _, _ = getWith(t, s.URL+MetricsPath, "")
	require.Equal(t, http.StatusUnauthorized, status)

	// A token where none is configured opens nothing.
	plain := serve(t, Config{Addr: "0.0.0.0:0", Redis: b.rc, User: "ops", Password: "pw"})
	status, _, _ = getWith(t, plain.URL+MetricsPath, "Bearer "+token)
	require.Equal(t, http.StatusUnauthorized, status)

	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	t.Cleanup(func() { _ = rc.Close() })
	_, err := NewHandler(Config{Addr: "0.0.0.0:0", Redis: rc, User: "ops", Password: "same", MetricsToken: "same"})
	require.ErrorContains(t, err, "must differ")
}

// TestMonitoringHeaders: every response says nosniff and carries a Content-Security-Policy; the
// web UI's allows asynqmon's own inline scripts by hash and nothing else inline.
func TestMonitoringHeaders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := serve(t, Config{Addr: "127.0.0.1:0", Redis: b.rc, Registry: b.reg, User: "ops", Password: "pw"})
	for _, tt := range []struct {
		path, auth string
		status     int
		ui         bool
		console    bool
	}{
		{HealthzPath, "", 200, false, false},
		{ReadyzPath, basic("ops", "pw"), 200, false, false},
		{MetricsPath, basic("ops", "pw"), 200, false, false},
		{MetricsPath, "", 401, false, false},
		{"/nothing-here", basic("ops", "pw"), 404, false, false},
		{"/monitoring/", basic("ops", "pw"), 200, true, false},
		{"/monitoring/api/queues", basic("ops", "pw"), 200, true, false},
		{"/monitoring/api/queues", "", 401, true, false},
		{"/console/", basic("ops", "pw"), 200, false, true},
		{"/console/static/console.css", basic("ops", "pw"), 200, false, true},
		{"/console/", "", 401, false, false},
	} {
		status, header, body := getWith(t, s.URL+tt.path, tt.auth)
		require.Equal(t, tt.status, status, tt.path)
		require.Equal(t, "nosniff", header.Get("X-Content-Type-Options"), tt.path)
		require.Equal(t, "DENY", header.Get("X-Frame-Options"), tt.path)
		csp := header.Get("Content-Security-Policy")
		if tt.console {
			require.Equal(t, console.CSP, csp, "%s: the console's own policy: its own files, nothing inline", tt.path)
			require.NotContains(t, csp, "unsafe")
			continue
		}
		if !tt.ui {
			require.Equal(t, ownPagesCSP, csp, tt.path)
			continue
		}
		require.Contains(t, csp, "frame-ancestors 'none'")
		require.NotContains(t, csp, "'unsafe-inline' 'sha", "no inline script but asynqmon's own")
		require.NotContains(t, csp, "unsafe-eval")
		if tt.path == "/monitoring/" {
			scripts := inlineScript.FindAllStringSubmatch(body, -1)
			require.Len(t, scripts, 2, "asynqmon's page has its flags and webpack's runtime inline")
			for _, sc := range scripts {
				sum := sha256.Sum256([]byte(sc[1]))
				require.Contains(t, csp, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
			}
		}
	}
}

// TestConsoleAccess: the console follows the HTTP side's rules as asynqmon does: without
// credentials (loopback) it is read-only, buttons hidden and changes refused; with them it changes
// things on loopback, and off loopback only with AllowChanges; ReadOnly turns changes off
// everywhere.
func TestConsoleAccess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ops := basic("ops", "pw")
	for _, tt := range []struct {
		name    string
		cfg     Config
		auth    string
		changes bool
	}{
		{"loopback, no credentials", Config{Addr: "127.0.0.1:0"}, "", false},
		{"loopback, credentials", Config{Addr: "127.0.0.1:0", User: "ops", Password: "pw"}, ops, true},
		{"loopback, read-only", Config{Addr: "127.0.0.1:0", User: "ops", Password: "pw", ReadOnly: true}, ops, false},
		{"every interface", Config{Addr: "0.0.0.0:0", User: "ops", Password: "pw"}, ops, false},
		{"every interface, changes allowed", Config{Addr: "0.0.0.0:0", User: "ops", Password: "pw", AllowChanges: true}, ops, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Redis = b.rc
			s := serve(t, cfg)
			// An open breaker: the overview offers its reset where changes are on.
			require.NoError(t, b.rc.Set(t.Context(), keys.Breaker, `{"open":true,"code":"ERROR_ZERO_BALANCE"}`, 0).Err())
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, s.URL+"/console/", nil)
			require.NoError(t, err)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			page, err := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			require.NoError(t, err)
			require.Equal(t, http.StatusOK, resp.StatusCode, string(page))
			require.Equal(t, !tt.changes, strings.Contains(string(page), `id="read-only"`))
			require.Equal(t, tt.changes, strings.Contains(string(page), `value="reset-breaker"`))

			headers := map[string]string{"Content-Type": "application/x-www-form-urlencoded", "Sec-Fetch-Site": "same-origin"}
			if tt.auth != "" {
				headers["Authorization"] = tt.auth
			}
			// Without the page's token: refused, whatever the credentials.
			require.Equal(t, http.StatusForbidden, post(t, s, "/console/act", "", "", headers))
			if !tt.changes {
				return
			}
			token := regexp.MustCompile(`name="csrf" value="([^"]+)"`).FindStringSubmatch(string(page))
			require.NotNil(t, token)
			form := "op=reset-breaker&confirm=yes&csrf=" + token[1]
			req, err = http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL+"/console/act", strings.NewReader(form))
			require.NoError(t, err)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			for _, ck := range resp.Cookies() {
				req.AddCookie(ck)
			}
			resp, err = http.DefaultClient.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			state, err := breaker.Read(t.Context(), b.rc)
			require.NoError(t, err)
			require.False(t, state.Open, "the operator reset the breaker")
		})
	}
}

// TestMonitoringLoginSlowdown: past LoginFreeFailures wrong logins, the answer to a wrong one is
// held (1 s, then longer) while the right credentials from the same address still get in at once;
// with LoginWaiting answers held, the address gets 429 and Retry-After without a check until the
// first held answer leaves. The clock, and every hold, is the test's.
func TestMonitoringLoginSlowdown(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: enqueuetest.Redis(t).Addr})
	t.Cleanup(func() { _ = rc.Close() })
	clock := newFakeClock()
	s := serve(t, Config{Addr: "0.0.0.0:0", Redis: rc, User: "ops", Password: "pw", MetricsToken: "tok",
		Now: clock.now, Sleep: clock.sleep})
	try := func(auth string) (int, string) {
		status, header, _ := getWith(t, s.URL+MetricsPath, auth)
		return status, header.Get("Retry-After")
	}
	// held sends a wrong login whose answer the limiter holds, and returns its status once released.
	held := func(auth string, hold time.Duration) <-chan int {
		done := make(chan int, 1)
		go func() {
			status, _, _ := getWith(t, s.URL+MetricsPath, auth)
			done <- status
		}()
		select {
		case d := <-clock.slept:
			require.Equal(t, hold, d, "the answer is held until its turn")
		case status := <-done:
			require.FailNow(t, "answered at once", "status %d", status)
		}
		return done
	}
	for i := range LoginFreeFailures {
		status, _ := try(basic("ops", fmt.Sprint("guess", i)))
		require.Equal(t, http.StatusUnauthorized, status, "failure %d is free", i+1)
	}
	first := held("Bearer guess", time.Second) // tokens count too
	status, _ := try(basic("ops", "pw"))
	require.Equal(t, http.StatusOK, status, "the right password gets in while a wrong answer is held")
	status, _ = try("Bearer tok")
	require.Equal(t, http.StatusOK, status)
	status, _ = try("") // no credentials: nothing to slow down, just asked for
	require.Equal(t, http.StatusUnauthorized, status)
	clock.add(time.Second)
	require.Equal(t, http.StatusUnauthorized, <-first)

	// A good login forgot nothing: the next wrong ones are held, longer each time, each after the last.
	answers := []<-chan int{
		held(basic("ops", "guess a"), 2*time.Second),
		held(basic("ops", "guess b"), 6*time.Second),
		held(basic("ops", "guess c"), 14*time.Second),
	}
	require.Len(t, answers, LoginWaiting)
	status, retry := try(basic("ops", "pw"))
	require.Equal(t, http.StatusTooManyRequests, status, "a full queue refuses without a check")
	require.Equal(t, "2", retry, "until the first held answer leaves")
	status, _, _ = getWith(t, s.URL+HealthzPath, "")
	require.Equal(t, http.StatusOK, status)

	clock.add(2 * time.Second)
	require.Equal(t, http.StatusUnauthorized, <-answers[0])
	status, _ = try(basic("ops", "pw"))
	require.Equal(t, http.StatusOK, status, "room again: the operator is in")
	clock.add(12 * time.Second)
	for _, answer := range answers[1:] {
		require.Equal(t, http.StatusUnauthorized, <-answer)
	}
}

// fakeClock is a test's clock: sleeps end when the test moves it past their end, and each sleep
// that blocks is reported on slept as it starts.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []clockWaiter
	slept   chan time.Duration
}

type clockWaiter struct {
	at   time.Time
	wake chan struct{}
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Unix(1_800_000_000, 0), slept: make(chan time.Duration, 64)}
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	waiting := c.waiters[:0]
	for _, w := range c.waiters {
		if c.t.Before(w.at) {
			waiting = append(waiting, w)
		} else {
			close(w.wake)
		}
	}
	c.waiters = waiting
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	w := clockWaiter{at: c.t.Add(d), wake: make(chan struct{})}
	if !c.t.Before(w.at) {
		c.mu.Unlock()
		return nil
	}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	c.slept <- d
	select {
	case <-w.wake:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// skip is a sleep that moves the clock on by d at once.
func (c *fakeClock) skip(_ context.Context, d time.Duration) error {
	c.add(d)
	return nil
}

// TestLoginLimiter drives one address's guesses with a check that counts, each from a client that
// gives up at once (the most an attacker can send): it gets its free failures and LoginWaiting
// held ones, then at most one check per hold, however many it sends; the right credentials from
// the same address get in whenever there is room, and another address is never held.
func TestLoginLimiter(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := newLoginLimiter(clock.now, clock.sleep)
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	checks := 0
	wrong := func() bool { checks++; return false }
	right := func() bool { checks++; return true }
	flood := func(addr string) (refused int) {
		for range 1000 {
			if l.attempt(gone, addr, wrong).refused {
				refused++
			}
		}
		return refused
	}

	require.Equal(t, 1000-LoginFreeFailures-LoginWaiting, flood("10.0.0.1"))
	require.Equal(t, LoginFreeFailures+LoginWaiting, checks, "free failures, then a full queue")
	out := l.attempt(t.Context(), "10.0.0.1", right)
	require.True(t, out.refused, "a full queue refuses even the right password")
	require.Equal(t, time.Second, out.retry, "until the first held answer leaves")
	require.Equal(t, LoginFreeFailures+LoginWaiting, checks, "refused without a check")

	out = l.attempt(t.Context(), "10.0.0.2", wrong)
	require.Equal(t, loginOutcome{}, out, "another address is checked and not held")
	require.True(t, l.attempt(t.Context(), "10.0.0.2", right).ok)

	clock.add(time.Second) // the first held answer leaves: room for one
	checks = 0
	require.True(t, l.attempt(t.Context(), "10.0.0.1", right).ok, "the operator gets in at once")
	require.Equal(t, 1, checks)
	// Every LoginDelayMax, a flood gets the room its held answers left: what is left from before
	// at first, then one check a round (one answer leaves per hold).
	for round := range 20 {
		clock.add(LoginDelayMax)
		checks = 0
		flood("10.0.0.1")
		if round == 0 {
			require.LessOrEqual(t, checks, LoginWaiting)
			continue
		}
		require.Equal(t, 1, checks, "round %d: one check per hold", round)
	}

	clock.add(LoginForget + LoginWaiting*LoginDelayMax)
	out = l.attempt(t.Context(), "10.0.0.1", wrong)
	require.Zero(t, out.held, "failures long past are forgotten")
	require.False(t, out.refused)

	// Bounded: many addresses never hold more than LoginTracked entries.
	for i := range LoginTracked + 500 {
		l.attempt(gone, fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255), wrong)
	}
	require.LessOrEqual(t, l.tracked(), LoginTracked)
	clock.add(LoginForget + 2*time.Minute)
	l.attempt(gone, "192.0.2.1", wrong)
	require.Equal(t, 1, l.tracked(), "forgotten addresses go first")
}

// TestLoginDelay: the hold doubles from one second past the free failures up to LoginDelayMax,
// and a full queue's last answer still leaves inside the server's WriteTimeout.
func TestLoginDelay(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		count int
		want  time.Duration
	}{
		{LoginFreeFailures + 1, time.Second},
		{LoginFreeFailures + 2, 2 * time.Second},
		{LoginFreeFailures + 3, 4 * time.Second},
		{LoginFreeFailures + 4, 8 * time.Second},
		{LoginFreeFailures + 5, LoginDelayMax},
		{LoginFreeFailures + 100, LoginDelayMax},
	} {
		require.Equal(t, tt.want, loginDelay(tt.count), "failure %d", tt.count)
	}
	require.Less(t, LoginWaiting*LoginDelayMax, WriteTimeout)
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key into dir and returns
// their paths and a pool that trusts the certificate.
func selfSigned(t *testing.T, dir, name string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
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
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}

// TestListenAndServeTLS: a real TLS handshake against the certificate given, TLS 1.2 at least,
// no plain HTTP on that port, and a certificate renewed in place served without a restart.
func TestListenAndServeTLS(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	t.Cleanup(func() { _ = rc.Close() })
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir, "first")

	addr, stop, err := ListenAndServe(t.Context(), Config{Addr: "127.0.0.1:0", Redis: rc, TLSCertFile: certFile, TLSKeyFile: keyFile})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(t.Context()) })
	client := func(pool *x509.CertPool, maxVersion uint16) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS10, MaxVersion: maxVersion}}}
	}
	resp, err := client(pool, 0).Get("https://" + addr + HealthzPath)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.GreaterOrEqual(t, resp.TLS.Version, uint16(tls.VersionTLS12))
	require.Equal(t, "first", resp.TLS.PeerCertificates[0].Subject.CommonName)
	_ = resp.Body.Close()

	_, err = client(pool, tls.VersionTLS11).Get("https://" + addr + HealthzPath)
	require.Error(t, err, "TLS 1.1 is refused")
	_, err = client(x509.NewCertPool(), 0).Get("https://" + addr + HealthzPath)
	require.Error(t, err, "an untrusted certificate fails the handshake")
	resp, err = http.Get("http://" + addr + HealthzPath)
	if err == nil {
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "plain HTTP is not served")
		_ = resp.Body.Close()
	}

	// Renewed in place: the next handshake has the new certificate.
	_, _, pool2 := selfSigned(t, dir, "second")
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(certFile, later, later))
	require.NoError(t, os.Chtimes(keyFile, later, later))
	resp, err = client(pool2, 0).Get("https://" + addr + HealthzPath)
	require.NoError(t, err)
	require.Equal(t, "second", resp.TLS.PeerCertificates[0].Subject.CommonName)
	_ = resp.Body.Close()

	// Wrong files stop the start; half a pair is refused.
	_, _, err = ListenAndServe(t.Context(), Config{Addr: "127.0.0.1:0", Redis: rc, TLSCertFile: keyFile, TLSKeyFile: certFile})
	require.ErrorContains(t, err, "TLS certificate")
	_, _, err = ListenAndServe(t.Context(), Config{Addr: "127.0.0.1:0", Redis: rc, TLSCertFile: certFile})
	require.ErrorContains(t, err, "--http-tls-key")
}

// TestListenAndServeLimits: oversized headers are refused by the server itself.
func TestListenAndServeLimits(t *testing.T) {
	t.Parallel()
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialed
	t.Cleanup(func() { _ = rc.Close() })
	addr, stop, err := ListenAndServe(t.Context(), Config{Addr: "127.0.0.1:0", Redis: rc})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(t.Context()) })
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+HealthzPath, nil)
	require.NoError(t, err)
	req.Header.Set("X-Big", strings.Repeat("x", 2*MaxHeaderBytes))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode)
}
