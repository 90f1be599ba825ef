//go:build unix

package gateway_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/browsertest"
)

// attackPage is a page on one loopback port that, opened in a browser, tries to make the browser
// submit paid captchas to a gateway without keys on another port (%[1]s is its URL): a no-cors
// POST of createTask with a text/plain body, a no-cors GET of in.php, and in.php as an image.
// When all three have settled it marks the body, so the test knows they were sent.
const attackPage = `<!doctype html><html><body><script>
const gw = %[1]q;
const task = {clientKey: "anything", task: {type: "RecaptchaV2TaskProxyless", websiteURL: "https://shop.example/login", websiteKey: "k"}};
const inURL = gw + "/in.php?" + %[2]q;
Promise.allSettled([
  fetch(gw + "/createTask", {mode: "no-cors", method: "POST", body: JSON.stringify(task)}),
  fetch(inURL, {mode: "no-cors"}),
  new Promise(done => { const img = new Image(); img.onload = img.onerror = done; img.src = inURL + "&img=1"; }),
]).then(() => document.body.setAttribute("data-sent", "all"));
</script></body></html>`

// TestWebPageInBrowser opens, in headless Chromium, a page served from one loopback port that
// tries to drive the gateway on another: the browser sends every request (the gateway counts
// their refusals) and not one task is queued.
func TestWebPageInBrowser(t *testing.T) {
	t.Parallel()
	browser := browsertest.Find(t)
	b := setup(t, nil)
	in := url.Values{"key": {"anything"}, "method": {"userrecaptcha"}, "googlekey": {"k"}, "pageurl": {"https://shop.example/login"}}.Encode()
	page := startHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, attackPage, b.url, in)
	}))
	require.NotEqual(t, strings.TrimPrefix(page, "http://"), strings.TrimPrefix(b.url, "http://"))

	dom := browsertest.Run(t, browser, "--dump-dom", page+"/")
	require.Contains(t, dom, `data-sent="all"`, "the page sent its three requests:\n%s", dom)
	requireNothingQueued(t, b)
	require.Equal(t, float64(1), testutil.ToFloat64(requestsCounter(t, b, gateway.MethodCreateTask, "none", gateway.CodeCrossOrigin)))
	require.Equal(t, float64(2), testutil.ToFloat64(requestsCounter(t, b, gateway.PathIn, "none", gateway.CodeCrossOrigin)))
}
