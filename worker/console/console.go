package console

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// Path is where the console lives; its pages are under Path + "/".
const Path = "/console"

// PageSize is how many jobs a list page shows.
const PageSize = 50

// ReadTimeout bounds the Redis reads of one page.
const ReadTimeout = 10 * time.Second

// CSP is the Content-Security-Policy of every console response: the page's own stylesheet and
// script, forms posted to itself, nothing inline, nothing from elsewhere, never framed.
const CSP = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; " +
	"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config configures the console.
type Config struct {
	// Redis is the Redis the workers use. It is never closed here. Required.
	Redis redis.UniversalClient
	// Policy is the workers' policy file (worker.LoadPolicy): queue budgets and provider lists.
	// Defaults to none.
	Policy *policyfile.Policy
	// ReadOnly hides every change (redrive, purge, breaker reset) and refuses the POSTs that
	// make them. Defaults to false.
	ReadOnly bool
	// ReadOnlyWhy is shown on every page of a read-only console: why it changes nothing and
	// what allows changes. Defaults to a line read from the request: without credentials, that
	// the worker's HTTP side has none (changes need SOLVEQUEUE_HTTP_USER and
	// SOLVEQUEUE_HTTP_PASSWORD); with them, that it was started read-only (--http-read-only, or
	// a non-loopback --http without --http-allow-changes).
	ReadOnlyWhy string
	// Logger receives one line per change, naming who made it. Defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Defaults to time.Now.
	Now func() time.Time
}

// withDefaults returns a copy of c with every zero optional field set to its default.
func (c Config) withDefaults() Config {
	if c.Policy == nil {
		c.Policy = policyfile.Default()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// console serves the pages.
type console struct {
	cfg       Config
	rc        redis.UniversalClient
	client    *admin.Client
	producer  *enqueue.Client // tells which queues no worker serves
	inspector *asynq.Inspector
	pages     map[string]*template.Template
}

// New returns the console as one handler for the paths under Path: it is mounted by the HTTP
// side of a worker (package worker/monitor), behind that side's access control, and sets its
// own security headers (CSP, nosniff, no framing). Changes are POSTs that carry the page's
// CSRF token, come from the console's own origin, and are confirmed on a second page.
func New(cfg Config) (http.Handler, error) {
	if cfg.Redis == nil {
		return nil, errors.New("console: Redis must be the workers' Redis client, got nil")
	}
	cfg = cfg.withDefaults()
	client, err := admin.NewClient(admin.Config{Redis: cfg.Redis, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	producer, err := enqueue.NewClient(enqueue.Config{Redis: cfg.Redis, Now: cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &console{cfg: cfg, rc: cfg.Redis, client: client, producer: producer, inspector: asynq.NewInspectorFromRedisClient(cfg.Redis), pages: pages}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+Path+"/{$}", c.overview)
	mux.HandleFunc("GET "+Path+"/job", c.job)
	mux.HandleFunc("GET "+Path+"/jobs", c.jobs)
	mux.HandleFunc("POST "+Path+"/act", c.act)
	mux.Handle("GET "+Path+"/static/", http.StripPrefix(Path+"/static/", http.FileServerFS(static)))
	return headers(http.NewCrossOriginProtection().Handler(mux)), nil
}

// headers sets the console's security headers on every response.
func headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// page is what every template gets besides its own data.
type page struct {
	Title     string
	Nav       string // which top link is current
	CanChange bool   // changes are shown (not read-only)
	WhyNot    string // read-only: why, and what allows changes
	CSRF      string // the form token
	Search    string // the search box's text
	Now       time.Time
	Data      any
}

// render writes a page, setting the CSRF cookie if the browser has none yet.
func (c *console) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	p.CanChange = !c.cfg.ReadOnly
	p.Now = c.cfg.Now().UTC()
	if p.CanChange {
		p.CSRF = csrfToken(w, r)
	} else {
		p.WhyNot = c.readOnlyWhy(r)
	}
	t, ok := c.pages[name]
	if !ok {
		http.Error(w, "console: no page "+name, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", p); err != nil {
		c.cfg.Logger.Warn("console: render", "page", name, "err", err)
	}
}

// readOnlyWhy says why the console changes nothing and what allows changes. The worker's HTTP
// side (package worker/monitor) asks every request for its credentials once it has any, so a
// request without them means it has none; a request with them means changes are off by choice.
func (c *console) readOnlyWhy(r *http.Request) string {
	if c.cfg.ReadOnlyWhy != "" {
		return c.cfg.ReadOnlyWhy
	}
	if _, _, ok := r.BasicAuth(); !ok {
		return "the worker's --http has no credentials, and changes (redrive, purge, breaker reset) always need them: " +
			"start the worker with SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD set (or --http-user and --http-password), then sign in" +
			gatewayNote
	}
	return "the worker was started with --http-read-only, or on a non-loopback --http without --http-allow-changes: " +
		"restart it without --http-read-only (and, off loopback, with --http-allow-changes) to allow changes" + gatewayNote
}

// gatewayNote ends the read-only line: a gateway's --http serves the same console, never for changes.
const gatewayNote = " (a gateway's console is always read-only: make changes in a worker's)"

// fail renders an error page.
func (c *console) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	c.render(w, r, status, "error", page{Title: http.StatusText(status), Data: msg})
}

// readCtx bounds a page's Redis reads.
func (c *console) readCtx(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), ReadTimeout)
}

// who names the person behind a request for the change log: the basic-auth user the HTTP side
// checked, or, where it asks for none, the client's address.
func who(r *http.Request) string {
	if user, _, ok := r.BasicAuth(); ok && user != "" {
		return user
	}
	return "anonymous@" + r.RemoteAddr
}
