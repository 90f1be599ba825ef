package monitor

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"regexp"
	"strings"
)

// ownPagesCSP is the Content-Security-Policy of every response that is not the web UI: error
// pages, /metrics, /readyz, /healthz. They are text or JSON, and nothing in them may load,
// run, frame or be framed.
const ownPagesCSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// setHeaders sets the headers every response carries: no MIME sniffing, no framing, no
// referrer, and a Content-Security-Policy (csp for the web UI under MonitoringPath).
func setHeaders(w http.ResponseWriter, path, uiCSP string) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	if path == MonitoringPath || strings.HasPrefix(path, MonitoringPath+"/") {
		h.Set("Content-Security-Policy", uiCSP)
		return
	}
	h.Set("Content-Security-Policy", ownPagesCSP)
}

// inlineScript finds the inline scripts of an HTML page (a <script> without src).
var inlineScript = regexp.MustCompile(`(?s)<script>(.*?)</script>`)

// uiPolicy returns the Content-Security-Policy of asynqmon's pages: scripts from this origin
// and asynqmon's own inline scripts only (by their SHA-256, read from the page ui serves, which
// depends on the root path and the read-only flag), its styles and Google's fonts, which its
// page links, and requests to this origin only. It fails when the page has no inline script to
// hash (another asynqmon version): the policy would then break the UI.
func uiPolicy(ui http.Handler) (string, error) {
	req, err := http.NewRequest(http.MethodGet, MonitoringPath+"/", nil)
	if err != nil {
		return "", err
	}
	rec := newPageRecorder()
	ui.ServeHTTP(rec, req)
	scripts := inlineScript.FindAllStringSubmatch(rec.body.String(), -1)
	if rec.code != http.StatusOK || len(scripts) == 0 {
		return "", errors.New("monitor: asynqmon's page has no inline script to allow by hash (status " + http.StatusText(rec.code) + ")")
	}
	hashes := make([]string, 0, len(scripts))
	for _, s := range scripts {
		sum := sha256.Sum256([]byte(s[1]))
		hashes = append(hashes, "'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'")
	}
	return strings.Join([]string{
		"default-src 'self'",
		"script-src 'self' " + strings.Join(hashes, " "),
		"style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
		"font-src 'self' https://fonts.gstatic.com",
		"img-src 'self' data:",
		"connect-src 'self'",
		"object-src 'none'",
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}, "; "), nil
}

// pageRecorder keeps what a handler writes (net/http/httptest is for tests): asynqmon's page
// for its CSP hashes, and its task API's answers for the job headlines.
type pageRecorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func newPageRecorder() *pageRecorder {
	return &pageRecorder{header: http.Header{}, code: http.StatusOK}
}

func (r *pageRecorder) Header() http.Header         { return r.header }
func (r *pageRecorder) Write(p []byte) (int, error) { return r.body.Write(p) }
func (r *pageRecorder) WriteHeader(code int)        { r.code = code }
