package gateway

import (
	"encoding/json"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/solvequeue/solvequeue/internal/guesses"
)

// The gateway's edge: what is checked of a request before its protocol is read.
//
//   - A web page may not drive the gateway. A browser says where a request comes from
//     (Sec-Fetch-Site, or Origin on older browsers); a cross-origin one is refused whatever its
//     method, since 2captcha's in.php submits a paid captcha on a GET as well as on a POST.
//     Programs (the Python and Node clients, curl) send neither header and pass.
//   - A gateway without keys answers only a loopback Host: a page on a name that an attacker
//     rebinds to 127.0.0.1 (DNS rebinding) is same-origin to the browser, so only the Host
//     header tells it apart.
//   - An address that keeps sending wrong keys waits, longer with each one (package guesses),
//     before its keys are checked again. The count is in this process's memory: a gateway
//     behind a load balancer counts per instance, and one behind a reverse proxy sees every
//     client as the proxy's address.

// edge holds the checks of a request made before its protocol is read.
type edge struct {
	crossOrigin *http.CrossOriginProtection
	wrongKeys   *guesses.Limiter
}

func newEdge(now func() time.Time) edge {
	return edge{crossOrigin: http.NewCrossOriginProtection(), wrongKeys: guesses.New(guesses.Params{Now: now})}
}

// admitRequest answers a request the edge refuses and reports whether the request may go on.
func (h *Handler) admitRequest(w http.ResponseWriter, r *http.Request) bool {
	var refusal *apiError
	switch {
	case h.edge.crossOrigin.Check(unsafeView(r)) != nil:
		refusal = badRequest(CodeCrossOrigin, "a web page may not call this gateway (Sec-Fetch-Site %q, Origin %q): "+
			"call it from a program, not from a browser", truncate(r.Header.Get("Sec-Fetch-Site"), 32), truncate(r.Header.Get("Origin"), 128))
	case h.Open() && !IsLoopback(r.Host):
		refusal = badRequest(CodeHostNotAllowed, "a gateway without --keys answers only to a loopback Host such as 127.0.0.1 or localhost, not %q "+
			"(a guard against DNS rebinding): call it at http://127.0.0.1:PORT, or give it --keys", truncate(r.Host, 128))
	default:
		return true
	}
	h.refuse(w, r, refusal)
	return false
}

// unsafeView is r as http.CrossOriginProtection checks a POST: it lets GET, HEAD and OPTIONS
// through as safe methods, but a GET to in.php submits a paid captcha.
func unsafeView(r *http.Request) *http.Request {
	if r.Method == http.MethodPost {
		return r
	}
	v := r.WithContext(r.Context())
	v.Method = http.MethodPost
	return v
}

// refuse answers HTTP 403 in the request's protocol: the createTask protocol's JSON, or
// 2captcha's text (JSON with json=1 in the query; the body of a refused request is never read).
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, e *apiError) {
	began := h.cfg.Now()
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	path, twoCaptcha := twoCaptchaPath(r.URL.Path)
	if !twoCaptcha {
		path = strings.Trim(r.URL.Path, "/")
		hdr.Set("Content-Type", "application/json")
		h.write(w, http.StatusForbidden, e.answer())
		h.cfg.Metrics.answered(path, noKey, e.code, h.cfg.Now().Sub(began))
		return
	}
	a := tcError(gatewayRow(e.code).TwoCaptcha, "%s: %s", e.code, e.description)
	var data []byte
	if r.URL.Query().Get("json") == "1" {
		hdr.Set("Content-Type", "application/json")
		data, _ = json.Marshal(map[string]any{"status": 0, "request": a.request, "error_text": a.errorText})
	} else {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		data = []byte(a.plain)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write(data)
	h.cfg.Metrics.answered(path, noKey, a.request, h.cfg.Now().Sub(began))
}

// authenticate finds the key a client sent. An address that sent too many wrong keys is refused
// until its wait is over, its key unchecked; a right key never clears the count, so that a
// client with a key of its own cannot go on guessing others' between its own requests.
func (h *Handler) authenticate(r *http.Request, clientKey string) (Key, *apiError) {
	addr := clientAddr(r)
	if wait := h.edge.wrongKeys.Wait(addr); wait > 0 {
		return Key{}, badRequest(CodeTooManyWrongKeys, "too many wrong keys from this address: no key is checked for another %d s",
			int((wait+time.Second-1)/time.Second))
	}
	key, ok := h.lookup(clientKey)
	if !ok {
		if wait := h.edge.wrongKeys.Failed(addr); wait > 0 {
			h.cfg.Logger.Warn("gateway: repeated wrong keys; this address waits before its keys are checked again", "client", addr, "wait", wait)
		}
		return Key{}, &apiError{id: 1, code: CodeKeyDoesNotExist, description: "clientKey is not a key of this gateway"}
	}
	return key, nil
}

// clientAddr is the address wrong keys are counted by: the connection's peer (forwarded headers
// are anyone's to write), an IPv6 peer by its /64, which one host commonly holds whole.
func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.To4() != nil {
		return host
	}
	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
