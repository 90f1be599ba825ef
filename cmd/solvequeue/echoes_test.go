package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// TestEchoedPasswordInAnyForm is the review's third case: a provider echoes the proxy password
// in another case or escaped ("PROXYPW!SECRET42" as "PrOxYpW%21sEcReT42"), and none of the forms
// may reach an outcome, the dead-letter queue, the web UI or a log line.
func TestEchoedPasswordInAnyForm(t *testing.T) {
	t.Parallel()
	const pw = "PROXYPW!SECRET42"
	echoes := map[string]string{
		"case":    "proxy login refused for password proxypw!secret42",
		"percent": "proxy http://alice:PrOxYpW%21sEcReT42@203.0.113.7:8080/ refused; retry with pw=PrOxYpW%21sEcReT42",
		"json":    `upstream said {"password":"PROXYPW\u0021SECRET42"}`,
		"html":    "<p>bad password PROXYPW&#33;SECRET42</p>",
		"query":   "GET /auth?u=alice&p=PROXYPW%21SECRET42&x=1 failed",
	}
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	f := newFront(t, s)
	f.setIntercept(func(w http.ResponseWriter, r *http.Request, c frontCall) bool {
		form, code, ok := strings.Cut(strings.TrimPrefix(c.key, "echo:"), ";")
		if !strings.HasPrefix(c.key, "echo:") || !ok || c.method != "createTask" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = fmt.Fprintf(w, `{"errorId":1,"errorCode":%q,"errorDescription":%q}`, code, echoes[form])
		return true
	})
	w := s.startWorker(t, nil, "--http", "127.0.0.1:0", "--poll-interval", "200ms", "--log-level", "debug")
	base := httpBase(t, w)

	var lines strings.Builder
	var ids []string
	for form := range echoes {
		for _, code := range []string{"PROXY_AUTH_FAILED", "SOME_NEW_PROXY_ERROR"} { // failed, dead
			id := "echo-" + form + "-" + strings.ToLower(code[:10])
			ids = append(ids, id)
			fmt.Fprintf(&lines, `{"id":%q,"task":{"type":"RecaptchaV2Task","websiteURL":"https://shop.example/login",`+
				`"websiteKey":"echo:%s;%s","proxyType":"http","proxyAddress":"203.0.113.7","proxyPort":8080,`+
				`"proxyLogin":"alice","proxyPassword":%q}}`+"\n", id, form, code, pw)
		}
	}
	in := filepath.Join(t.TempDir(), "jobs.jsonl")
	require.NoError(t, os.WriteFile(in, []byte(lines.String()), 0o644))
	var shown strings.Builder
	stdout, stderr, code := runCLI(t, s.env(), nil, "batch", in)
	require.Equal(t, 0, code, stderr)
	shown.WriteString(stdout + stderr)
	require.Contains(t, stdout, `"state":"failed"`)
	require.Contains(t, stdout, `"state":"dead"`)
	require.Contains(t, stdout, "[redacted]", "the descriptions are kept, the password cut")
	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "list", "--json"}, {"status", ids[0], "--json"}} {
		stdout, stderr, code := runCLI(t, s.env(), nil, args...)
		require.Equal(t, 0, code, stderr)
		shown.WriteString(stdout + stderr)
	}
	for _, state := range []string{"archived", "completed"} {
		code, body := httpGet(t, base+"/monitoring/api/queues/default/"+state+"_tasks?page_size=100")
		require.Equal(t, 200, code, body)
		shown.WriteString(body)
	}
	shown.WriteString(w.logs.String())
	text := strings.ToLower(shown.String())
	for _, form := range []string{"secret42", "proxypw", "%21secret", "\\u0021secret", "&#33;secret"} {
		require.NotContains(t, text, form)
	}
}
