package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ErrCredentialsRequired is returned (wrapped, saying what to set) by NewHandler and
// ListenAndServe when the address is reachable from other hosts and no credentials are set.
var ErrCredentialsRequired = errors.New("the HTTP side needs credentials on a non-loopback address")

// IsLoopback reports whether a listen address is reachable from this host only:
// "127.0.0.1:8080", "[::1]:8080" and "localhost:8080" are; ":8080" (every interface),
// "0.0.0.0:8080", any other IP and any other host name are not.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	return loopbackHost(host)
}

func loopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// maxRequestBody bounds a request's body: asynqmon's API takes small JSON bodies only.
const maxRequestBody = 1 << 20

// role is what a request's credentials allow.
type role int

const (
	roleNone    role = iota // no credentials (or none configured): loopback reads only
	roleMetrics             // the metrics token: GET /metrics and /readyz
	roleAdmin               // the basic-auth user: everything, changes where allowed
)

// guard applies access control to every path but /healthz, and sets the security headers on
// every response:
//
//   - With SOLVEQUEUE_HTTP_USER/PASSWORD set, every path needs them (basic auth), except that
//     /metrics and /readyz also take the metrics token (Authorization: Bearer), which opens
//     nothing else. Web UI changes (pause, delete, run) need the basic-auth user, and are off on
//     a non-loopback address unless AllowChanges is set, and everywhere with ReadOnly.
//   - Without them (loopback only) the side may be read by this host, with a Host check against
//     DNS rebinding, and changes nothing: they need credentials.
//   - Unsafe cross-origin browser requests (CSRF against asynqmon's buttons) are refused.
//   - A client address that keeps giving wrong credentials has the answers to its wrong ones held,
//     longer with each failure, and gets 429 (with Retry-After) without a check while it has
//     LoginWaiting of them held; the right credentials are let in at once (see loginLimiter).
func guard(cfg Config, uiCSP string, next http.Handler) http.Handler {
	next = http.NewCrossOriginProtection().Handler(next)
	hasAdmin, hasToken := cfg.User != "", cfg.MetricsToken != ""
	wantUser := sha256.Sum256([]byte(cfg.User))
	wantPass := sha256.Sum256([]byte(cfg.Password))
	wantToken := sha256.Sum256([]byte(cfg.MetricsToken))
	changes := cfg.AllowsChanges()
	logins := newLoginLimiter(cfg.Now, cfg.Sleep)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setHeaders(w, r.URL.Path, uiCSP)
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, maxRequestBody)
		}
		if r.URL.Path == HealthzPath {
			next.ServeHTTP(w, r)
			return
		}
		user, pass, basic := r.BasicAuth()
		token, bearer := bearerToken(r)
		basic, bearer = basic && hasAdmin, bearer && hasToken // credentials of a kind not configured are ignored
		who := roleNone
		if basic || bearer {
			client := clientAddr(r)
			tried := logins.attempt(r.Context(), client, func() bool {
				if basic {
					gotUser := sha256.Sum256([]byte(user))
					gotPass := sha256.Sum256([]byte(pass))
					// Both compares always run: timing says nothing about which part was wrong.
					return subtle.ConstantTimeCompare(gotUser[:], wantUser[:])&subtle.ConstantTimeCompare(gotPass[:], wantPass[:]) == 1
				}
				got := sha256.Sum256([]byte(token))
				return subtle.ConstantTimeCompare(got[:], wantToken[:]) == 1
			})
			switch {
			case tried.refused:
				w.Header().Set("Retry-After", strconv.Itoa(int((tried.retry+time.Second-1)/time.Second)))
				http.Error(w, "too many failed logins from this address: wait and try again", http.StatusTooManyRequests)
				return
			case !tried.ok:
				if tried.held > 0 {
					cfg.Logger.Warn("monitor: repeated failed logins; holding this client's answers", "client", client, "held", tried.held)
				}
				unauthorized(w, hasToken)
				return
			case basic:
				who = roleAdmin
			default:
				who = roleMetrics
			}
		}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		switch who {
		case roleAdmin:
			if !safe && !changes {
				http.Error(w, "forbidden: the web UI is read-only here (on a non-loopback address it changes "+
					"nothing unless the worker runs with --http-allow-changes; --http-read-only turns changes off "+
					"everywhere); use the solvequeue CLI", http.StatusForbidden)
				return
			}
		case roleMetrics:
			if !safe || (r.URL.Path != MetricsPath && r.URL.Path != ReadyzPath) {
				http.Error(w, "forbidden: the metrics token reads /metrics and /readyz only", http.StatusForbidden)
				return
			}
		case roleNone:
			if hasAdmin {
				unauthorized(w, hasToken)
				return
			}
			if !loopbackRequestHost(r.Host) {
				http.Error(w, "forbidden: without credentials this side answers only to a loopback Host "+
					"(a guard against DNS rebinding): browse http://127.0.0.1:PORT, or set "+
					"SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD", http.StatusForbidden)
				return
			}
			if !safe {
				http.Error(w, "forbidden: without credentials the web UI is read-only; changes need "+
					"SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD, even on loopback", http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func unauthorized(w http.ResponseWriter, hasToken bool) {
	w.Header().Set("WWW-Authenticate", `Basic realm="solvequeue", charset="UTF-8"`)
	msg := "unauthorized: give SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD"
	if hasToken {
		msg += " (or, for /metrics and /readyz, the metrics token as Authorization: Bearer)"
	}
	http.Error(w, msg, http.StatusUnauthorized)
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header.
func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// clientAddr is the address failed logins are counted by: the connection's peer. Behind a
// proxy that is the proxy, for every client (forwarded headers are not trusted: anyone can
// write them).
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// loopbackRequestHost reports whether a request's Host header names this host.
func loopbackRequestHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return loopbackHost(host)
}
