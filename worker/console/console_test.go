package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redact"
	"github.com/solvequeue/solvequeue/worker/console"
)

// serve runs the console on its own (the access rules are package monitor's).
func serve(t *testing.T, b *bundle, readOnly bool) *httptest.Server {
	t.Helper()
	h, err := console.New(console.Config{Redis: b.rc, Policy: b.policy, ReadOnly: readOnly, Logger: b.log})
	require.NoError(t, err)
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// TestConsole reads every page after a run of real jobs, then makes changes through the forms as
// a browser would, and checks the refusals: a missing token, a cross-site post, read-only mode.
func TestConsole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	s := serve(t, b, false)
	web := newSession(t, s.URL, "", "")

	t.Run("overview", func(t *testing.T) {
		var body string
		// The workers write their tally every 2 s: wait for that event, not for a time.
		require.Eventually(t, func() bool {
			_, body = web.get("/console/")
			return strings.Contains(body, "Ended, last hour</h2>\n    <p class=\"big\">6</p>") // the six jobs setup waited for
		}, 30*time.Second, 100*time.Millisecond)
		status, body := web.get("/console/")
		require.Equal(t, http.StatusOK, status)
		for _, want := range []string{"Account breaker", "Closed", "AnySolver balance", "AnySolver balance</h2>\n    <p class=\"big\">", "read ",
			`<b>default</b>`, `<b>scrapers</b>`, "UNKNOWN_PROVIDER_ERROR", "CapSolver", "CapMonster", "Spend caps",
			"100.0 %", "50.0 %", "1 h"} {
			require.Contains(t, body, want)
		}
		requireNoSecret(t, "overview", body)
	})

	t.Run("job page", func(t *testing.T) {
		status, body := web.get("/console/job?id=order-42")
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, `<span id="job-id">order-42</span>`, "the full ID, dash and all")
		require.Contains(t, body, `id="job-state">dead<`)
		require.Contains(t, body, "UNKNOWN_PROVIDER_ERROR")
		require.Contains(t, body, "createTask")
		require.Contains(t, body, "in the dead-letter queue")
		require.Contains(t, body, redact.Marker)
		require.Contains(t, body, `value="redrive"`)
		require.Regexp(t, `(?s)<ol class="timeline".*submitted.*first attempt started.*attempt 1: UNKNOWN_PROVIDER_ERROR on createTask → dead.*put into the dead-letter queue`, body)
		requireNoSecret(t, "job page", body)

		require.Contains(t, body, `<span id="retries">0 of 3 retries spent</span> (the policy's budget)`, "the retries decide counts, not asynq's")
		require.NotContains(t, body, "asynq's count")
		require.NotContains(t, body, "of 101", "asynq's MaxRetry is a backstop, not the budget")

		_, body = web.get("/console/job?id=order-45")
		require.Contains(t, body, `id="job-state">solved<`)
		require.Contains(t, body, `<span id="retries">1 of 3 retries spent</span>`)
		require.Regexp(t, `(?s)SERVICE_UNAVAILABLE.*retry`, body, "the retried error is in the history")

		_, body = web.get("/console/job?id=order-43")
		require.Contains(t, body, `id="job-state">failed<`)
		require.Contains(t, body, `value="redrive-failed"`)
		requireNoSecret(t, "failed job page", body)

		_, body = web.get("/console/job?id=scrape-1")
		require.Contains(t, body, "CapSolver → CapMonster")
		require.Contains(t, body, "failover")

		status, body = web.get("/console/job?id=order")
		require.Equal(t, http.StatusNotFound, status, "an ID is matched in full, never by its first part")
		require.Contains(t, body, `id="not-found"`)
	})

	t.Run("lists", func(t *testing.T) {
		_, body := web.get("/console/jobs?state=dead")
		require.Contains(t, body, ">order-42</a>")
		require.Contains(t, body, ">scrape-2</a>")
		_, body = web.get("/console/jobs?state=dead&code=NO_PROVIDERS_AVAILABLE")
		require.Contains(t, body, ">scrape-2</a>")
		require.NotContains(t, body, ">order-42</a>")
		_, body = web.get("/console/jobs?state=dead&queue=default")
		require.Contains(t, body, ">order-42</a>")
		require.NotContains(t, body, ">scrape-2</a>")
		require.Eventually(t, func() bool {
			_, body = web.get("/console/jobs?state=failed")
			return strings.Contains(body, ">order-43</a>")
		}, 30*time.Second, 100*time.Millisecond, "the failed index is written with the tally")
		_, body = web.get("/console/jobs?state=retrying&queue=default")
		require.Contains(t, body, ">order-46</a>")
		require.Contains(t, body, "RATE_LIMITED")
		_, body = web.get("/console/jobs?state=retrying&code=RATE_LIMITED")
		require.Contains(t, body, ">order-46</a>")
		_, body = web.get("/console/jobs?state=retrying&code=DOMAIN_BANNED")
		require.Contains(t, body, `id="empty"`)
		_, body = web.get("/console/jobs?state=inflight")
		require.Contains(t, body, ">order-46</a>", "in flight holds the retrying jobs too")
		require.Contains(t, body, `<a href="/console/jobs?state=inflight" aria-current="page">In flight</a>`)
		requireNoSecret(t, "lists", body)
	})

	t.Run("a change needs the page's token, from the console's own origin", func(t *testing.T) {
		_, page := web.get("/console/job?id=order-42")
		m := csrfInput.FindStringSubmatch(page)
		require.NotNil(t, m)
		form := url.Values{"op": {"purge"}, "job": {"default/order-42"}, "confirm": {"yes"}, "csrf": {m[1]}}

		stranger := newSession(t, s.URL, "", "") // another browser: no cookie
		status, body := stranger.post("/console/act", form, nil)
		require.Equal(t, http.StatusForbidden, status, body)
		status, _ = web.post("/console/act", form, map[string]string{"Sec-Fetch-Site": "cross-site"})
		require.Equal(t, http.StatusForbidden, status)
		status, _ = web.post("/console/act", form, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"})
		require.Equal(t, http.StatusForbidden, status)
		bad := url.Values{"op": {"purge"}, "job": {"default/order-42"}, "confirm": {"yes"}, "csrf": {strings.Repeat("x", 43)}}
		status, _ = web.post("/console/act", bad, nil)
		require.Equal(t, http.StatusForbidden, status)
		require.Equal(t, enqueue.StateDead, b.state(t, "default", "order-42"), "nothing was purged")
	})

	t.Run("redrive: confirm, then it runs again and solves", func(t *testing.T) {
		_, page := web.get("/console/jobs?state=dead&queue=default")
		token := csrfInput.FindStringSubmatch(page)[1]
		form := url.Values{"op": {"redrive"}, "job": {"default/order-42"}, "csrf": {token}, "back": {"/console/jobs?state=dead"}}
		status, body := web.post("/console/act", form, nil)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "Redrive 1 job?")
		require.Contains(t, body, "paid for again")
		require.Equal(t, enqueue.StateDead, b.state(t, "default", "order-42"), "asking is not doing")

		form.Set("confirm", "yes")
		status, body = web.post("/console/act", form, nil)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "Redrive: 1 of 1 done")
		b.waitState(t, "default", "order-42", enqueue.StateSolved)
		require.Contains(t, b.logs.String(), `"msg":"console: change","op":"redrive","by":"anonymous@127.0.0.1`)

		status, body = web.post("/console/act", form, nil)
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, body, "Redrive: 0 of 1 done", "a second redrive of the same letter changes nothing")
	})

	t.Run("run a failed job again, by choice", func(t *testing.T) {
		_, page := web.get("/console/job?id=order-43")
		token := csrfInput.FindStringSubmatch(page)[1]
		form := url.Values{"op": {"redrive-failed"}, "job": {"default/order-43"}, "csrf": {token}, "confirm": {"yes"}}
		status, body := web.post("/console/act", form, nil)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "1 of 1 done")
		b.waitState(t, "default", "order-43", enqueue.StateSolved)
	})

	t.Run("purge", func(t *testing.T) {
		_, page := web.get("/console/jobs?state=dead")
		token := csrfInput.FindStringSubmatch(page)[1]
		form := url.Values{"op": {"purge"}, "job": {"scrapers/scrape-2"}, "csrf": {token}, "confirm": {"yes"}}
		status, body := web.post("/console/act", form, nil)
		require.Equal(t, http.StatusOK, status, body)
		require.Contains(t, body, "Purge: 1 of 1 done")
		_, err := b.client.StatusIn(context.Background(), "scrapers", "scrape-2")
		require.ErrorIs(t, err, enqueue.ErrJobNotFound)
	})

	t.Run("read-only", func(t *testing.T) {
		ro := newSession(t, serve(t, b, true).URL, "", "")
		for _, path := range []string{"/console/", "/console/jobs?state=dead", "/console/jobs?state=failed",
			"/console/job?id=order-46", "/console/jobs?state=retrying"} {
			status, body := ro.get(path)
			require.Equal(t, http.StatusOK, status, path)
			require.Contains(t, body, `id="read-only"`, path)
			require.Contains(t, body, "no credentials, and changes (redrive, purge, breaker reset) always need them: "+
				"start the worker with SOLVEQUEUE_HTTP_USER and SOLVEQUEUE_HTTP_PASSWORD set", "why, and how to allow changes: %s", path)
			require.NotContains(t, body, `method="post"`, path)
			require.NotContains(t, body, "<button type=\"submit\" name=\"op\"", path)
			requireNoSecret(t, path, body)
		}
		status, _ := ro.post("/console/act", url.Values{"op": {"reset-breaker"}, "confirm": {"yes"}}, nil)
		require.Equal(t, http.StatusForbidden, status)

		// Signed in, changes are off by the worker's choice: the line names the flags.
		_, body := newSession(t, serve(t, b, true).URL, "ops", "pw").get("/console/jobs?state=dead")
		require.Contains(t, body, "started with --http-read-only, or on a non-loopback --http without --http-allow-changes")
		require.NotContains(t, body, "SOLVEQUEUE_HTTP_USER")
	})

	t.Run("no read-only line when changes are allowed", func(t *testing.T) {
		_, body := web.get("/console/")
		require.NotContains(t, body, `id="read-only"`)
	})
}

// TestJobRetryBudget: the job page counts retries against the job's own budget when it has one,
// and the policy's otherwise.
func TestJobRetryBudget(t *testing.T) {
	t.Parallel()
	b := setupBare(t)
	ctx := context.Background()
	require.NoError(t, queuereg.Register(ctx, b.rc, "default"))
	jobs := []struct {
		id, payload string
		retries     int
		want        string
	}{
		{"own-budget", `{"v":1,"task":{"type":"x"},"maxRetries":5}`, 2, `2 of 5 retries spent</span> (the job's own budget)`},
		{"no-retries", `{"v":1,"task":{"type":"x"},"maxRetries":0}`, 0, `0 of 0 retries spent</span> (the job's own budget)`},
		{"policy-budget", `{"v":1,"task":{"type":"x"}}`, 3, `3 of 3 retries spent</span> (the policy's budget)`},
	}
	for _, tt := range jobs {
		d := deadletter.Letter{ID: tt.id, Queue: "default", Payload: json.RawMessage(tt.payload),
			Record: jobwire.Record{State: enqueue.StateDead, Retries: tt.retries, Attempts: tt.retries + 1}, DeadAt: time.Now()}
		data, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, b.rc.HSet(ctx, keys.DeadLetters("default"), keys.DeadLetterField("default", d.ID), data).Err())
	}
	web := newSession(t, serve(t, b, false).URL, "", "")
	for _, tt := range jobs {
		status, body := web.get("/console/job?id=" + tt.id)
		require.Equal(t, http.StatusOK, status, tt.id)
		require.Contains(t, body, tt.want, tt.id)
	}
}

// TestInFlightList: the "In flight" link opens every job not ended yet, whatever asynq state
// it waits in, not only the retrying ones.
func TestInFlightList(t *testing.T) {
	t.Parallel()
	b := setupBare(t)
	ctx := context.Background()
	for _, id := range []string{"wait-1", "wait-2"} {
		_, err := b.client.Submit(ctx, enqueue.Job{ID: id, Task: map[string]any{"type": "RecaptchaV2TaskProxyless",
			"websiteURL": "https://a.example", "websiteKey": "6Le"}})
		require.NoError(t, err)
	}
	producer := asynq.NewClientFromRedisClient(b.rc)
	_, err := producer.Enqueue(asynq.NewTask(jobwire.TaskType, []byte(`{"v":1,"task":{"type":"x"}}`)),
		asynq.TaskID("later-1"), asynq.Queue("default"), asynq.ProcessIn(time.Hour))
	require.NoError(t, err)

	web := newSession(t, serve(t, b, false).URL, "", "")
	_, home := web.get("/console/")
	require.Contains(t, home, `<a href="/console/jobs?state=inflight">In flight</a>`, "the top link")
	for _, path := range []string{"/console/jobs?state=inflight", "/console/jobs?state=inflight&queue=default"} {
		status, body := web.get(path)
		require.Equal(t, http.StatusOK, status, path)
		require.Contains(t, body, "In flight jobs", path)
		require.Contains(t, body, "3 jobs", path)
		for _, id := range []string{"wait-1", "wait-2", "later-1"} {
			require.Contains(t, body, ">"+id+"</a>", path)
		}
		require.Contains(t, body, `<span class="state pending">pending</span>`, path)
		require.Contains(t, body, `<span class="state scheduled">scheduled</span>`, path)
		require.Contains(t, body, `<option value="inflight" selected>in flight</option>`, path)
	}
	_, body := web.get("/console/jobs?state=pending&queue=default")
	require.Contains(t, body, "2 jobs", "one state still lists only its own")
	require.NotContains(t, body, ">later-1</a>")
}

// TestDeadListPages: the dead-letter list is paged, newest first, and filtered by code.
func TestDeadListPages(t *testing.T) {
	t.Parallel()
	b := setupBare(t)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	require.NoError(t, queuereg.Register(context.Background(), b.rc, "default"))
	for i := range 120 {
		code := "UNKNOWN_PROVIDER_ERROR"
		if i%3 == 0 {
			code = "NO_PROVIDERS_AVAILABLE"
		}
		d := admin.DeadLetter{ID: fmt.Sprintf("bulk-%03d", i), Queue: "default", Payload: json.RawMessage(`{"v":1,"task":{"type":"x"}}`),
			Record: jobwire.Record{State: enqueue.StateDead, Error: &enqueue.ErrorInfo{ErrorCode: code}}, DeadAt: at.Add(time.Duration(i) * time.Minute)}
		data, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, b.rc.HSet(context.Background(), keys.DeadLetters("default"), keys.DeadLetterField("default", d.ID), data).Err())
	}
	web := newSession(t, serve(t, b, false).URL, "", "")
	_, body := web.get("/console/jobs?state=dead")
	require.Contains(t, body, "120 jobs · page 1 of 3")
	require.Contains(t, body, ">bulk-119</a>", "newest first")
	require.NotContains(t, body, ">bulk-069</a>")
	require.Contains(t, body, `rel="next"`)
	_, body = web.get("/console/jobs?state=dead&page=3")
	require.Contains(t, body, ">bulk-000</a>")
	require.Contains(t, body, `rel="prev"`)
	require.NotContains(t, body, `rel="next"`)
	_, body = web.get("/console/jobs?state=dead&code=NO_PROVIDERS_AVAILABLE")
	require.Contains(t, body, "40 jobs")

	// A selection of three, purged at once after the confirmation.
	token := csrfInput.FindStringSubmatch(body)[1]
	form := url.Values{"op": {"purge"}, "job": {"default/bulk-000", "default/bulk-003", "default/bulk-006"}, "csrf": {token}}
	_, body = web.post("/console/act", form, nil)
	require.Contains(t, body, "Purge 3 jobs?")
	require.Equal(t, 3, strings.Count(body, `name="job"`), "the confirmation carries the selection")
	form.Set("confirm", "yes")
	_, body = web.post("/console/act", form, nil)
	require.Contains(t, body, "Purge: 3 of 3 done")
	n, err := b.rc.HLen(context.Background(), keys.DeadLetters("default")).Result()
	require.NoError(t, err)
	require.EqualValues(t, 117, n)
	require.Equal(t, 3, b.logs.Count(`"msg":"console: change","op":"purge"`), "one line per job")
}
