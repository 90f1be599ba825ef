package anysolvertest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

func TestDirectiveScript(t *testing.T) {
	t.Parallel()
	type B = anysolvertest.Behavior
	solve := anysolvertest.DefaultSolveTime
	tests := []struct {
		key  string
		want []B // by attempt; the last repeats
	}{
		{"plain-key", []B{{SolveTime: time.Hour}}}, // the fallback
		{"sq:", []B{{SolveTime: solve}}},
		{"sq:solve=6s", []B{{SolveTime: 6 * time.Second}}},
		{"sq: immediate ; id=job-1 ;", []B{{Immediate: true, SolveTime: solve}}},
		{"sq:create=SERVICE_UNAVAILABLE*2;poll=TASK_NOT_FOUND*1;failed=CAPTCHA_UNSOLVABLE*1;solve=6s;http=html502*1", []B{
			{CreateError: "SERVICE_UNAVAILABLE", SolveTime: 6 * time.Second},
			{CreateError: "SERVICE_UNAVAILABLE", SolveTime: 6 * time.Second},
			{PollError: "TASK_NOT_FOUND", SolveTime: 6 * time.Second},
			{PollFailed: "CAPTCHA_UNSOLVABLE", SolveTime: 6 * time.Second},
			{CreateHTTP: anysolvertest.FaultHTML502, SolveTime: 6 * time.Second},
			{SolveTime: 6 * time.Second},
		}},
		{"sq:create=BRAND_NEW/2;pollhttp=reset*2", []B{
			{CreateError: "BRAND_NEW", CreateErrorID: 2, SolveTime: solve},
			{PollHTTP: anysolvertest.FaultReset, SolveTime: solve},
			{PollHTTP: anysolvertest.FaultReset, SolveTime: solve},
			{SolveTime: solve},
		}},
	}
	bad := func(reason string) B {
		return B{CreateError: "INVALID_SITEKEY", CreateErrorDescription: "bad solvequeue directive: " + reason}
	}
	errs := []struct{ key, reason string }{
		{"sq:bogus=1", `unknown item "bogus=1" (want create, http, poll, pollhttp, failed, solve, immediate or id)`},
		{"sq:solve=soon", `"solve=soon": want a duration such as 6s`},
		{"sq:solve=-1s", `"solve=-1s": want a duration such as 6s`},
		{"sq:create=lower", `"create=lower": the code must be upper-case letters, digits and _`},
		{"sq:create=", `"create=": the code must be upper-case letters, digits and _`},
		{"sq:create=X*0", `"create=X*0": count "0" must be a whole number from 1 to 1000000`},
		{"sq:create=X*two", `"create=X*two": count "two" must be a whole number from 1 to 1000000`},
		{"sq:create=X/0", `"create=X/0": errorId "0" must be a non-zero whole number`},
		{"sq:http=teapot", `"http=teapot": unknown fault (want html502, http503, http429, garbage, truncated, wrongshape, huge, endless, hang or reset)`},
		{"sq:immediate=yes", `"immediate=yes" takes no value`},
	}
	for _, e := range errs {
		tests = append(tests, struct {
			key  string
			want []B
		}{e.key, []B{bad(e.reason)}})
	}
	script := anysolvertest.DirectiveScript(func(anysolvertest.Task) B { return B{SolveTime: time.Hour} })
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			t.Parallel()
			for attempt := range len(tt.want) + 2 {
				want := tt.want[min(attempt, len(tt.want)-1)]
				got := script(anysolvertest.Task{Type: "TurnstileTaskProxyless", Attempt: attempt,
					Fields: map[string]any{"type": "TurnstileTaskProxyless", "websiteKey": tt.key}})
				require.Equal(t, want, got, "attempt %d", attempt)
			}
		})
	}
	require.Equal(t, B{Immediate: true}, anysolvertest.DirectiveScript(nil)(anysolvertest.Task{Type: "ImageToTextTask"}))
}

// TestDirectiveOverHTTP plays the package example against the server: key counts drive it.
func TestDirectiveOverHTTP(t *testing.T) {
	t.Parallel()
	clock := epoch()
	fake, base := start(t, anysolvertest.Options{Now: clock.Now, Script: anysolvertest.DirectiveScript(nil)})
	wk := "sq:id=job7;create=SERVICE_UNAVAILABLE*2;poll=TASK_NOT_FOUND;failed=CAPTCHA_UNSOLVABLE;http=http429;solve=6s"
	task := `{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://example.com","websiteKey":"` + wk + `"}`
	for range 2 {
		_, m := post(t, base, "createTask", createBody(task))
		requireCode(t, m, "SERVICE_UNAVAILABLE", 1)
	}
	_, m := post(t, base, "getTaskResult", pollBody(create(t, base, task)))
	requireCode(t, m, "TASK_NOT_FOUND", 1)

	id := create(t, base, task)
	clock.Advance(6 * time.Second)
	_, m = post(t, base, "getTaskResult", pollBody(id))
	require.Equal(t, "failed", m["status"])
	require.Equal(t, "CAPTCHA_UNSOLVABLE", m["errorCode"])

	resp, err := http.Post(base+"/createTask", "application/json", stringsReader(createBody(task)))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)

	id = create(t, base, task)
	clock.Advance(5 * time.Second)
	_, m = post(t, base, "getTaskResult", pollBody(id))
	require.Equal(t, "processing", m["status"])
	clock.Advance(time.Second)
	_, m = post(t, base, "getTaskResult", pollBody(id))
	require.Equal(t, "ready", m["status"])
	require.Equal(t, 6, fake.Creates(wk))
	require.Equal(t, 4, fake.Polls(wk))
}
