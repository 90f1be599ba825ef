package monitor

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strings"
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

// guard applies access control to every path but /healthz: basic auth when credentials are
// set; otherwise (loopback only) a Host check, so that a web page cannot reach the open side
// through DNS rebinding. Unsafe cross-origin browser requests (CSRF against asynqmon's
// pause, delete and run buttons) are refused in both cases.
func guard(cfg Config, next http.Handler) http.Handler {
	next = http.NewCrossOriginProtection().Handler(next)
	secured := cfg.User != ""
	wantUser := sha256.Sum256([]byte(cfg.User))
	wantPass := sha256.Sum256([]byte(cfg.Password))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Frame-Options", "DENY")
		if r.URL.Path == HealthzPath {
			next.ServeHTTP(w, r)
			return
		}
		if !secured {
			if !loopbackRequestHost(r.Host) {
				http.Error(w, "forbidden: without credentials this side answers only to a loopback Host "+
					"(a guard against DNS rebinding): browse http://127.0.0.1:PORT, or set "+
					"SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD", http.StatusForbidden)
				return
			}
			next.ServeHTTP(w, r)
			return
		}
		user, pass, ok := r.BasicAuth()
		gotUser := sha256.Sum256([]byte(user))
		gotPass := sha256.Sum256([]byte(pass))
		// Both compares always run: timing says nothing about which part was wrong.
		match := subtle.ConstantTimeCompare(gotUser[:], wantUser[:]) & subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || match != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="solvequeue", charset="UTF-8"`)
			http.Error(w, "unauthorized: give SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// loopbackRequestHost reports whether a request's Host header names this host.
func loopbackRequestHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	return loopbackHost(host)
}
