//go:build unix

package console_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/browsertest"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/worker/monitor"
)

// screenshotDir is where the screenshots go: the README's own (screenshots/, beside this file)
// when SOLVEQUEUE_UPDATE_SCREENSHOTS is set, else $SOLVEQUEUE_TEST_ARTIFACTS or a temporary
// directory.
func screenshotDir(t *testing.T) string {
	t.Helper()
	if os.Getenv("SOLVEQUEUE_UPDATE_SCREENSHOTS") != "" {
		return "screenshots"
	}
	dir := os.Getenv("SOLVEQUEUE_TEST_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	return dir
}

// TestConsoleInBrowser drives the console in a real headless Chromium, served by a worker's HTTP
// side (package monitor, with credentials) over a real Redis, the fake AnySolver and a running
// worker: the pages render, the search box finds order-42 by its full ID, a redrive pressed on
// the page runs the job again until it is solved, a form posted from another site is refused,
// a read-only console shows no button, and no page shows a secret.
func TestConsoleInBrowser(t *testing.T) {
	t.Parallel()
	path := browsertest.Find(t)
	b := setup(t)
	const user = "ops"
	addr, stop, err := monitor.ListenAndServe(t.Context(), monitor.Config{Addr: "127.0.0.1:0", Redis: b.rc,
		Policy: b.policy, User: user, Password: httpPassword, Logger: b.log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(context.Background()) })
	base := "http://" + addr
	// The workers write their tally every 2 s: wait for that event before looking.
	web := newSession(t, base, user, httpPassword)
	require.Eventually(t, func() bool {
		_, body := web.get("/console/")
		return strings.Contains(body, "Ended, last hour</h2>\n    <p class=\"big\">6</p>")
	}, 30*time.Second, 100*time.Millisecond)

	c := startChrome(t, path)
	c.basicAuth(user, httpPassword)
	shots := screenshotDir(t)
	var pages []string // every page seen, checked for secrets at the end

	// The overview.
	c.navigate(base + "/console/")
	html := c.html()
	pages = append(pages, html)
	for _, want := range []string{"Account breaker", "UNKNOWN_PROVIDER_ERROR", "DOMAIN_BANNED", "CapMonster", "Spend caps"} {
		require.Contains(t, html, want)
	}
	require.Equal(t, "true", c.eval(`String(getComputedStyle(document.querySelector("header")).display === "flex")`),
		"the stylesheet loads under the console's CSP")
	c.screenshot(filepath.Join(shots, "overview.png"), 1280, false)

	// Search: the full ID, dash and all, as an operator types it.
	c.act(`document.querySelector("form.search input").value = "order-42"; document.querySelector("form.search button").click()`)
	require.Contains(t, c.eval("location.href"), "/console/job?id=order-42")
	html = c.html()
	pages = append(pages, html)
	require.Equal(t, "order-42", c.eval(`document.getElementById("job-id").textContent`))
	require.Equal(t, "dead", c.eval(`document.getElementById("job-state").textContent`))
	require.Contains(t, html, redact.Marker, "the proxy password shows redacted")
	c.screenshot(filepath.Join(shots, "job-phone.png"), 390, true)

	// Redrive from the page: the button, the confirmation, then the job runs again.
	c.act(`document.querySelector('button[value="redrive"]').click()`)
	html = c.html()
	pages = append(pages, html)
	require.Contains(t, html, "Redrive 1 job?")
	require.Equal(t, enqueue.StateDead, b.state(t, "default", "order-42"), "asking is not doing")
	c.act(`document.getElementById("confirm").click()`)
	html = c.html()
	pages = append(pages, html)
	require.Contains(t, html, "Redrive: 1 of 1 done")
	b.waitState(t, "default", "order-42", enqueue.StateSolved)
	c.navigate(base + "/console/job?id=order-42")
	require.Equal(t, "solved", c.eval(`document.getElementById("job-state").textContent`))
	pages = append(pages, c.html())
	require.Contains(t, b.logs.String(), `"msg":"console: change","op":"redrive","by":"ops","ok":true`)

	// The one script: select every job of a page.
	c.navigate(base + "/console/jobs?state=dead")
	require.Equal(t, "0", c.eval(`String(document.querySelectorAll('#jobs input[name="job"]:checked').length)`))
	c.eval(`document.getElementById("select-all").click()`)
	require.NotEqual(t, "0", c.eval(`String(document.querySelectorAll('#jobs input[name="job"]:checked').length)`))
	require.Equal(t, c.eval(`String(document.querySelectorAll('#jobs input[name="job"]').length)`),
		c.eval(`String(document.querySelectorAll('#jobs input[name="job"]:checked').length)`))

	// Lists, as the operator pages through them.
	for _, list := range []string{"/console/jobs?state=dead", "/console/jobs?state=failed", "/console/jobs?state=retrying"} {
		c.navigate(base + list)
		pages = append(pages, c.html())
	}
	require.Contains(t, pages[len(pages)-1], ">order-46</a>")
	require.Contains(t, pages[len(pages)-2], ">order-43</a>")

	// A job that failed over between providers, then died: its whole history.
	c.navigate(base + "/console/job?id=scrape-2")
	html = c.html()
	pages = append(pages, html)
	require.Equal(t, "2", c.eval(`String(document.querySelectorAll("#errors tbody tr").length)`))
	require.Contains(t, html, "CapSolver → CapMonster")
	c.screenshot(filepath.Join(shots, "job.png"), 1280, false)

	// A page on another site posts a purge of scrape-2 through the operator's browser, which
	// sends the operator's credentials along: refused.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/console/act">
<input name="op" value="purge"><input name="job" value="scrapers/scrape-2"><input name="confirm" value="yes">
<input name="csrf" value="guessed-token-guessed-token-guessed-token"></form>
<script>document.getElementById("f").submit()</script>`, base)
	}))
	t.Cleanup(evil.Close)
	c.forgetLoads()
	c.call("Page.navigate", map[string]any{"url": strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)})
	c.waitFor(`location.href.endsWith("/console/act") && document.readyState === "complete"`)
	require.Contains(t, c.eval("document.body.innerText"), "cross-origin request detected")
	require.Equal(t, enqueue.StateDead, b.state(t, "scrapers", "scrape-2"), "nothing was purged")
	require.NotContains(t, b.logs.String(), `"op":"purge"`)

	// A read-only console: the same pages, no button that changes anything.
	roAddr, roStop, err := monitor.ListenAndServe(t.Context(), monitor.Config{Addr: "127.0.0.1:0", Redis: b.rc,
		Policy: b.policy, User: user, Password: httpPassword, ReadOnly: true, Logger: b.log})
	require.NoError(t, err)
	t.Cleanup(func() { _ = roStop(context.Background()) })
	for _, p := range []string{"/console/", "/console/job?id=order-43", "/console/job?id=scrape-2", "/console/jobs?state=dead", "/console/jobs?state=failed"} {
		c.navigate("http://" + roAddr + p)
		require.Equal(t, "0", c.eval(`String(document.querySelectorAll('form[method="post"], button[name="op"]').length)`), p)
		require.Equal(t, "true", c.eval(`String(document.getElementById("read-only") !== null)`), p)
		pages = append(pages, c.html())
	}

	for i, html := range pages {
		requireNoSecret(t, fmt.Sprintf("page %d", i), html)
	}
	t.Logf("screenshots in %s", shots)
}
