package main

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// twoCaptchaSaw is what e2e-2captcha.js printed: what @2captcha/captcha-solver returned for each
// scenario, or what it threw.
type twoCaptchaSaw struct {
	Solved, Permanent, Transient, Image struct {
		Value *struct {
			Data string `json:"data"`
			ID   string `json:"id"`
		} `json:"value"`
		Thrown string `json:"thrown"`
	}
	Report, Balance, WrongKey struct {
		Value  any    `json:"value"`
		Thrown string `json:"thrown"`
	}
	Requests []string `json:"requests"`
}

// TestGatewayThrough2captchaNodeClient runs `solvequeue worker --gateway` as a process, with a
// keys file, against the fake AnySolver, and drives it with @2captcha/captcha-solver from npm,
// pointed at the gateway by a fetch override (its host is fixed to 2captcha.com): a token, an
// image, a permanent error, an error the queue's retries hide, a report, the balance and a key the
// gateway does not know, each as the library would see it from 2captcha.
func TestGatewayThrough2captchaNodeClient(t *testing.T) {
	t.Parallel()
	const gatewayKey = "gk-e2e-2captcha-9a4e1c7b52d0f3e6"
	s, p, printed := runNodeClient(t, "e2e-2captcha.js", "twocaptcha-scrapers", gatewayKey)
	// The library console.logs codes it does not know (the JSON its balance() fails to tell
	// apart): the script's report is the last line.
	lines := strings.Split(strings.TrimSpace(printed), "\n")
	var saw twoCaptchaSaw
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &saw), "e2e-2captcha.js printed: %s", printed)
	t.Logf("the client saw: %s", printed)

	// The library spoke 2captcha's protocol: tokens by GET, the image by POST, answers from res.php.
	require.Contains(t, saw.Requests, "GET /IN.PHP")
	require.Contains(t, saw.Requests, "POST /IN.PHP")
	require.Contains(t, saw.Requests, "GET /RES.PHP")

	require.Empty(t, saw.Solved.Thrown)
	require.NotNil(t, saw.Solved.Value)
	require.NotEmpty(t, saw.Solved.Value.Data, "the token")
	require.Regexp(t, `^[1-9][0-9]*$`, saw.Solved.Value.ID, "2captcha's ids are numbers")
	require.Equal(t, 1, s.fake.Creates("e2e2c-plain-site-key"))

	require.Nil(t, saw.Permanent.Value)
	require.Equal(t, "APIError: ERROR_CAPTCHA_UNSOLVABLE", saw.Permanent.Thrown, "a permanent error, by a name the library knows")
	require.Equal(t, 1, s.fake.Creates("sq:id=e2e2c-permanent;create=DOMAIN_BANNED*9"), "and is paid (tried) once")

	require.Empty(t, saw.Transient.Thrown, "two SERVICE_UNAVAILABLE answers are hidden by the queue's retries")
	require.NotNil(t, saw.Transient.Value)
	require.NotEmpty(t, saw.Transient.Value.Data)
	require.Equal(t, 3, s.fake.Creates("sq:id=e2e2c-transient;create=SERVICE_UNAVAILABLE*2"))

	require.Empty(t, saw.Image.Thrown)
	require.NotNil(t, saw.Image.Value)
	require.NotEmpty(t, saw.Image.Value.Data, "an image's text")

	require.Empty(t, saw.Report.Thrown)
	require.Equal(t, "OK_REPORT_RECORDED", saw.Report.Value)

	require.Empty(t, saw.Balance.Thrown)
	require.Equal(t, 77.5, saw.Balance.Value, "the balance the worker read from AnySolver")

	require.Nil(t, saw.WrongKey.Value)
	require.Contains(t, saw.WrongKey.Thrown, "ERROR_KEY_DOES_NOT_EXIST", "a key the gateway does not know")

	// The jobs went to the key's queue under its name, with the ids the client saw.
	tasks, err := s.inspector.ListCompletedTasks("scrapers")
	require.NoError(t, err)
	require.Len(t, tasks, 4)
	for _, task := range tasks {
		pl, err := jobwire.DecodePayload(task.Payload)
		require.NoError(t, err)
		require.Equal(t, "twocaptcha-scrapers", pl.KeyName)
		require.Positive(t, pl.GatewayTaskID)
		require.NotContains(t, string(task.Payload), gatewayKey)
	}
	require.NotContains(t, p.logs.String(), gatewayKey)
}

// TestGatewayTwoCaptchaOverTLS speaks 2captcha's protocol to `solvequeue gateway --tls-cert
// --tls-key` over HTTPS, with the wire exactly as 2captcha's documentation gives it: in.php as a
// POST form (key, method=userrecaptcha, googlekey, pageurl, json=1) answered {"status":1,
// "request":"<id>"}, then res.php?key=..&action=get&id=..&json=1 answered CAPCHA_NOT_READY until
// {"status":1,"request":"<token>"}. A worker solves the job on the fake AnySolver, whose clock
// the test moves: the captcha is not ready until the test says so. The certificate is
// self-signed, made here, and trusted by the client alone.
func TestGatewayTwoCaptchaOverTLS(t *testing.T) {
	t.Parallel()
	clock := anysolvertest.NewClock(time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC))
	rig := workertest.New(t, anysolvertest.Options{APIKeys: []string{"sk-tls-2captcha"}, Now: clock.Now,
		Script: anysolvertest.DirectiveScript(nil)})
	rig.Start(t, worker.Config{Queues: map[string]int{"scrapers": 1}, Concurrency: 4, ShutdownTimeout: time.Second,
		Poll: worker.PollConfig{Fixed: true, Interval: 50 * time.Millisecond}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})

	const gatewayKey = "gk-tls-2captcha-5d1e9b3a70c4f826"
	keys := cliWriteFile(t, "keys.yaml", "keys:\n  - name: tls-scrapers\n    key: "+gatewayKey+"\n    queue: scrapers\n")
	certFile, keyFile, pool := testCert(t)
	addr := freeLoopbackAddr(t)
	logs := startGatewayInProcess(t, rig.Redis.URL(), "serving AnySolver's API", "--addr", addr, "--keys", keys, "--tls-cert", certFile, "--tls-key", keyFile)

	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	base := "https://" + addr
	type answer struct {
		Status    int    `json:"status"`
		Request   string `json:"request"`
		ErrorText string `json:"error_text"`
	}
	decode := func(resp *http.Response, err error) answer {
		t.Helper()
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.NotNil(t, resp.TLS, "served over TLS")
		var a answer
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&a))
		return a
	}
	const siteKey = "sq:id=tls-2captcha;solve=30s"
	in := decode(client.PostForm(base+"/in.php", url.Values{
		"key": {gatewayKey}, "method": {"userrecaptcha"}, "googlekey": {siteKey},
		"pageurl": {"https://shop.example/login"}, "json": {"1"}}))
	require.Equal(t, 1, in.Status, "%+v", in)
	require.Regexp(t, `^[1-9][0-9]*$`, in.Request, "2captcha's ids are numbers")
	res := func(key string) answer {
		return decode(client.Get(base + "/res.php?" + url.Values{"key": {key}, "action": {"get"}, "id": {in.Request}, "json": {"1"}}.Encode()))
	}

	// The worker created the remote task and polls it; the fake's clock has not moved, so it is
	// not solved.
	require.Eventually(t, func() bool { return rig.Fake.Polls(siteKey) >= 1 }, hangGuard, 10*time.Millisecond)
	require.Equal(t, answer{Status: 0, Request: gateway.TwoCaptchaNotReady}, res(gatewayKey))

	clock.Advance(31 * time.Second)
	var got answer
	require.Eventually(t, func() bool { got = res(gatewayKey); return got.Status == 1 }, hangGuard, 20*time.Millisecond)
	require.NotEmpty(t, got.Request, "the token")
	require.Equal(t, 1, rig.Fake.Creates(siteKey), "paid once")

	// The same answer in plain text, as 2captcha gives it without json=1.
	resp, err := client.Get(base + "/res.php?" + url.Values{"key": {gatewayKey}, "action": {"get"}, "id": {in.Request}}.Encode())
	require.NoError(t, err)
	plain, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, "OK|"+got.Request, string(plain))

	// A key the gateway does not know hears 2captcha's own error.
	wrong := res("not-a-gateway-key")
	require.Equal(t, 0, wrong.Status)
	require.True(t, strings.HasPrefix(wrong.Request, "ERROR_"), "%+v", wrong)
	require.NotContains(t, logs.String(), gatewayKey)
}
