package gateway_test

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// edgeRequest is one raw HTTP request to the gateway.
type edgeRequest struct {
	method, path, contentType, body string
	header                          map[string]string
	host                            string // the Host header; "" keeps the URL's
}

// do sends req from the default client and returns the status and body.
func (b *testBundle) do(t *testing.T, req edgeRequest) (int, string) {
	t.Helper()
	return doFrom(t, http.DefaultClient, b.url, req)
}

func doFrom(t *testing.T, client *http.Client, base string, req edgeRequest) (int, string) {
	t.Helper()
	r, err := http.NewRequest(req.method, base+req.path, strings.NewReader(req.body))
	require.NoError(t, err)
	if req.contentType != "" {
		r.Header.Set("Content-Type", req.contentType)
	}
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	if req.host != "" {
		r.Host = req.host
	}
	resp, err := client.Do(r)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(body)
}

// A browser's headers on a request a page on another site makes, and on one an older browser
// makes (Origin only), and on one from another port of the same host (same-site, not same-origin).
var (
	crossSite = map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Origin": "http://evil.example"}
	sameSite  = map[string]string{"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "no-cors", "Origin": "http://127.0.0.1:1"}
	oldCross  = map[string]string{"Origin": "http://evil.example"}
	imageGET  = map[string]string{"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "image"}
)

// TestWebPagesCannotDrive: a gateway without keys on loopback refuses what a web page can make a
// browser send, in both protocols and whatever the method or body type, and queues nothing for
// it; it refuses a Host that is not loopback (DNS rebinding); programs, which send no browser
// headers, are served.
func TestWebPagesCannotDrive(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	createBody := `{"clientKey":"anything","task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":"k"}}`
	inQuery := "/in.php?" + params("key", "anything", "method", "userrecaptcha", "googlekey", "k", "pageurl", "https://shop.example/login").Encode()
	tests := []struct {
		name string
		req  edgeRequest
		code string // the code of the refusal
	}{
		{"no-cors POST, text/plain, cross-site", edgeRequest{method: "POST", path: "/createTask", contentType: "text/plain;charset=UTF-8", body: createBody, header: crossSite},
			gateway.CodeCrossOrigin},
		{"POST from another port of this host", edgeRequest{method: "POST", path: "/createTask", contentType: "text/plain", body: createBody, header: sameSite},
			gateway.CodeCrossOrigin},
		{"POST from an older browser (Origin only)", edgeRequest{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, header: oldCross},
			gateway.CodeCrossOrigin},
		{"getTaskResult cross-site", edgeRequest{method: "POST", path: "/getTaskResult", contentType: "text/plain", body: `{"clientKey":"anything","taskId":1}`, header: crossSite},
			gateway.CodeCrossOrigin},
		{"in.php GET from an <img>", edgeRequest{method: "GET", path: inQuery, header: imageGET}, gateway.CodeCrossOrigin},
		{"in.php form POST cross-site", edgeRequest{method: "POST", path: "/in.php", contentType: "application/x-www-form-urlencoded",
			body: strings.TrimPrefix(inQuery, "/in.php?"), header: crossSite}, gateway.CodeCrossOrigin},
		{"res.php GET cross-site, json=1", edgeRequest{method: "GET", path: "/res.php?key=anything&action=getbalance&json=1", header: crossSite},
			gateway.CodeCrossOrigin},
		{"rebound name", edgeRequest{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, host: "rebind.evil.example:8090"},
			gateway.CodeHostNotAllowed},
		{"rebound name, in.php", edgeRequest{method: "GET", path: inQuery, host: "rebind.evil.example"}, gateway.CodeHostNotAllowed},
		{"a LAN address as Host", edgeRequest{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, host: "192.168.1.10:8090"},
			gateway.CodeHostNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := b.do(t, tt.req)
			require.Equal(t, http.StatusForbidden, status, body)
			require.Contains(t, body, tt.code)
			if strings.Contains(tt.req.path, ".php") && !strings.Contains(tt.req.path, "json=1") {
				require.True(t, strings.HasPrefix(body, tt.code), "2captcha's plain answer is the code: %q", body)
				return
			}
			var a map[string]any
			require.NoError(t, json.Unmarshal([]byte(body), &a), "AnySolver's error shape: %s", body)
			if strings.Contains(tt.req.path, ".php") {
				require.Equal(t, float64(0), a["status"], body)
				require.Equal(t, tt.code, a["request"], body)
				return
			}
			require.Equal(t, float64(1), a["errorId"], body)
			require.Equal(t, tt.code, a["errorCode"], body)
			require.NotEmpty(t, a["errorDescription"])
		})
	}
	requireNothingQueued(t, b)
	require.Equal(t, float64(2), testutil.ToFloat64(requestsCounter(t, b, gateway.MethodCreateTask, "none", gateway.CodeHostNotAllowed)))

	// Programs send no browser headers, under any loopback Host: served.
	served := []edgeRequest{
		{method: "POST", path: "/createTask", contentType: "application/json", body: createBody},
		{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, host: "localhost:8090"},
		{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, host: "[::1]:8090"},
		{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, host: "LOCALHOST."},
		{method: "GET", path: inQuery},
		{method: "POST", path: "/createTask", contentType: "application/json", body: createBody, header: map[string]string{"Sec-Fetch-Site": "none"}},
	}
	for _, req := range served {
		status, body := b.do(t, req)
		require.Equal(t, http.StatusOK, status, body)
		require.True(t, strings.Contains(body, `"errorId":0`) || strings.HasPrefix(body, "OK|"), "%+v: %s", req, body)
	}
	requirePending(t, b, enqueue.DefaultQueue, len(served))
}

// TestWebPagesCannotDriveAKeyedGateway: with keys, a web page's request is refused as well, even
// with a right key (a key pasted into a page is still a page driving the gateway), and any Host
// is answered (the key is the guard).
func TestWebPagesCannotDriveAKeyedGateway(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	body, err := json.Marshal(create(alphaKey, recaptchaTask("solve")))
	require.NoError(t, err)
	status, answer := b.do(t, edgeRequest{method: "POST", path: "/createTask", contentType: "text/plain", body: string(body), header: crossSite})
	require.Equal(t, http.StatusForbidden, status)
	require.Contains(t, answer, gateway.CodeCrossOrigin)
	requireNothingQueued(t, b)
	status, answer = b.do(t, edgeRequest{method: "POST", path: "/createTask", contentType: "application/json", body: string(body), host: "gateway.example.com"})
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, answer, `"errorId":0`)
}

// fromAddr returns a client whose connections come from the loopback address ip (127.0.0.0/8 is
// loopback as a whole on Linux).
func fromAddr(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestWrongKeysSlowed: of 300 wrong keys sent at once from one address, only the free ones
// reach the key check; the address then waits, its keys unchecked (a right one too, on either
// protocol), and each wait it sits out lets exactly one more key be checked. A right key from
// another address is never slowed. The gateway's clock stands still, so the counts are exact.
func TestWrongKeysSlowed(t *testing.T) {
	t.Parallel()
	clock := &testClock{now: time.Now()}
	b := setupAt(t, mustKeys(t), clock.Now)
	attacker := fromAddr(t, "127.0.0.1")
	other := fromAddr(t, "127.0.0.2")
	wrong, err := json.Marshal(map[string]any{"clientKey": "gk-guess-00000000000000", "task": recaptchaTask("k")})
	require.NoError(t, err)
	right, err := json.Marshal(create(alphaKey, recaptchaTask("k")))
	require.NoError(t, err)
	send := func(client *http.Client, body []byte) string {
		t.Helper()
		status, answer := doFrom(t, client, b.url, edgeRequest{method: "POST", path: "/createTask", contentType: "application/json", body: string(body)})
		require.Equal(t, http.StatusOK, status, answer)
		var a map[string]any
		require.NoError(t, json.Unmarshal([]byte(answer), &a))
		code, _ := a["errorCode"].(string)
		return code
	}

	checked, refused := 0, 0
	for range 300 {
		switch code := send(attacker, wrong); code {
		case gateway.CodeKeyDoesNotExist:
			checked++
		case dialectIPBlocked:
			refused++
		default:
			t.Fatalf("unexpected answer %q", code)
		}
	}
	require.Equal(t, 6, checked, "5 free wrong keys, and the one that started the wait")
	require.Equal(t, 294, refused)
	require.Equal(t, float64(checked), testutil.ToFloat64(requestsCounter(t, b, gateway.MethodCreateTask, "none", gateway.CodeKeyDoesNotExist)))

	require.Equal(t, dialectIPBlocked, send(attacker, right), "while it waits, no key of the address is checked")
	tc := b.tcCall(t, "GET", gateway.PathIn, params("key", alphaKey, "method", "userrecaptcha", "googlekey", "k", "pageurl", "https://shop.example/login"), nil)
	require.True(t, strings.HasPrefix(tc, "ERROR_IP_BANNED"), "2captcha's protocol shares the count: %q", tc)
	for range 20 {
		require.Empty(t, send(other, right), "a right key from another address is never slowed")
	}

	// One second later, one more key is checked; wrong, it starts a wait of two.
	clock.Add(time.Second)
	require.Equal(t, gateway.CodeKeyDoesNotExist, send(attacker, wrong))
	require.Equal(t, dialectIPBlocked, send(attacker, wrong))
	clock.Add(time.Second)
	require.Equal(t, dialectIPBlocked, send(attacker, right))
	clock.Add(time.Second)
	require.Empty(t, send(attacker, right), "past its wait, a right key is served")
	require.Equal(t, gateway.CodeKeyDoesNotExist, send(attacker, wrong), "and a right key does not clear the count: the next wrong one is checked ...")
	require.Equal(t, dialectIPBlocked, send(attacker, wrong), "... and starts a longer wait at once")
	requirePending(t, b, "alpha", 21)
}

// dialectIPBlocked is the createTask protocol's code for gateway.CodeTooManyWrongKeys.
const dialectIPBlocked = "ERROR_IP_BLOCKED"
