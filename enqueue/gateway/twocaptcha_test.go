package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/ledger"
)

// How a 2captcha client sends a request: 2captcha's documentation gives in.php as a POST form,
// a multipart POST (an image file) or a GET, and res.php as a GET; @2captcha/captcha-solver
// POSTs images as JSON.
const (
	viaGET       = "GET"
	viaForm      = "form"
	viaMultipart = "multipart"
	viaJSON      = "json"
)

// tcFile is an image sent as the multipart file "file".
type tcFile struct {
	name string
	data []byte
}

// tc sends one request of 2captcha's protocol and returns the HTTP status and the body, checking
// the content type: JSON with json=1, plain text without.
func (b *testBundle) tc(t *testing.T, via, path string, params url.Values, file *tcFile) (int, string) {
	t.Helper()
	var req *http.Request
	var err error
	switch via {
	case viaGET:
		req, err = http.NewRequest(http.MethodGet, b.url+"/"+path+"?"+params.Encode(), nil)
	case viaForm:
		req, err = http.NewRequest(http.MethodPost, b.url+"/"+path, strings.NewReader(params.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	case viaMultipart:
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for k, vs := range params {
			for _, v := range vs {
				require.NoError(t, mw.WriteField(k, v))
			}
		}
		if file != nil {
			part, err := mw.CreateFormFile("file", file.name)
			require.NoError(t, err)
			_, err = part.Write(file.data)
			require.NoError(t, err)
		}
		require.NoError(t, mw.Close())
		req, err = http.NewRequest(http.MethodPost, b.url+"/"+path, &body)
		if req != nil {
			req.Header.Set("Content-Type", mw.FormDataContentType())
		}
	case viaJSON:
		obj := map[string]any{}
		for k := range params {
			obj[k] = params.Get(k)
		}
		if n, err := strconv.Atoi(params.Get("json")); err == nil {
			obj["json"] = n
		}
		data, _ := json.Marshal(obj)
		req, err = http.NewRequest(http.MethodPost, b.url+"/"+path, bytes.NewReader(data))
		if req != nil {
			req.Header.Set("Content-Type", "application/json")
		}
	}
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if params.Get("json") == "1" {
		require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	} else {
		require.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, string(raw)
}

// tcCall is tc for an answer that must be HTTP 200, as every 2captcha answer is.
func (b *testBundle) tcCall(t *testing.T, via, path string, params url.Values, file *tcFile) string {
	t.Helper()
	status, body := b.tc(t, via, path, params, file)
	require.Equal(t, http.StatusOK, status, body)
	return body
}

func params(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

var okID = regexp.MustCompile(`^OK\|([1-9][0-9]*)$`)

// tcSubmit sends an in.php request in plain text and returns the id of its "OK|id" answer.
func (b *testBundle) tcSubmit(t *testing.T, via string, p url.Values, file *tcFile) int64 {
	t.Helper()
	body := b.tcCall(t, via, gateway.PathIn, p, file)
	m := okID.FindStringSubmatch(body)
	require.NotNil(t, m, "in.php answers OK|<number>: %q", body)
	id, err := strconv.ParseInt(m[1], 10, 64)
	require.NoError(t, err)
	require.LessOrEqual(t, id, int64(gateway.MaxTaskID))
	return id
}

// tcWait polls res.php?action=get (plain text) until the answer is not CAPCHA_NOT_READY.
func (b *testBundle) tcWait(t *testing.T, key string, id int64) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		body := b.tcCall(t, viaGET, gateway.PathRes, params("key", key, "action", "get", "id", fmt.Sprint(id)), nil)
		if body != gateway.TwoCaptchaNotReady {
			return body
		}
		require.True(t, time.Now().Before(deadline), "captcha %d still not ready", id)
		time.Sleep(20 * time.Millisecond)
	}
}

// jobTask returns the task of the job behind a key's taskId, as the worker will read it.
func (b *testBundle) jobTask(t *testing.T, keyName, queue string, id int64) map[string]any {
	t.Helper()
	jobID, err := b.handler.JobID(context.Background(), keyName, id)
	require.NoError(t, err)
	info, err := asynq.NewInspectorFromRedisClient(b.rc).GetTaskInfo(queue, jobID)
	require.NoError(t, err)
	p, err := jobwire.DecodePayload(info.Payload)
	require.NoError(t, err)
	return p.Task
}

// PNG is a 1x1 PNG.
var png1x1, _ = base64.StdEncoding.DecodeString("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")

// TestTwoCaptchaWire drives 2captcha's protocol as its documentation gives it: in.php as a POST
// form, GET, multipart POST and JSON POST; res.php's get, ids=, getbalance, reportgood and
// reportbad; plain text and json=1; one taskId for both protocols.
func TestTwoCaptchaWire(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	b.startMiniWorker(t)
	const page = "https://shop.example/login"

	// A token, submitted as a POST form (2captcha-python, 2captcha-go), read in plain text.
	solved := b.tcSubmit(t, viaForm, params("key", alphaKey, "method", "userrecaptcha", "googlekey", "solve",
		"pageurl", page, "soft_id", "4587", "header_acao", "1"), nil)
	require.Equal(t, "OK|03AG-"+fmt.Sprint(solved), b.tcWait(t, alphaKey, solved))
	// json=1 on res.php.
	require.JSONEq(t, `{"status":1,"request":"03AG-`+fmt.Sprint(solved)+`"}`,
		b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "get", "id", fmt.Sprint(solved), "json", "1"), nil))
	// The same taskId on the createTask protocol.
	a := b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": alphaKey, "taskId": solved})
	require.Equal(t, gateway.StatusReady, a["status"])

	// A token submitted as a GET with json=1 (@2captcha/captcha-solver).
	body := b.tcCall(t, viaGET, gateway.PathIn, params("key", alphaKey, "method", "hcaptcha", "sitekey", "solve",
		"pageurl", page, "json", "1"), nil)
	var in struct {
		Status  int    `json:"status"`
		Request string `json:"request"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &in), body)
	require.Equal(t, 1, in.Status, body)
	hcaptcha, err := strconv.ParseInt(in.Request, 10, 64)
	require.NoError(t, err, "the id is a number in a string: %s", body)
	require.Equal(t, "OK|03AG-"+in.Request, b.tcWait(t, alphaKey, hcaptcha))
	require.Equal(t, "HCaptchaTaskProxyless", b.jobTask(t, "alpha", "alpha", hcaptcha)["type"])

	// A createTask's taskId reads on res.php.
	created := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("solve"))))
	require.Equal(t, "OK|03AG-"+fmt.Sprint(created), b.tcWait(t, alphaKey, created))

	// Images: a multipart file (method=post), base64 in a form, and base64 in a JSON body.
	for _, c := range []struct {
		via  string
		p    url.Values
		file *tcFile
	}{
		{viaMultipart, params("key", alphaKey, "method", "post", "regsense", "1"), &tcFile{"captcha.png", png1x1}},
		{viaForm, params("key", alphaKey, "method", "base64", "body", base64.StdEncoding.EncodeToString(png1x1), "numeric", "1"), nil},
		{viaJSON, params("key", alphaKey, "method", "base64", "body", base64.StdEncoding.EncodeToString(png1x1), "json", "1"), nil},
	} {
		var id int64
		if c.p.Get("json") == "1" {
			var in struct{ Request string }
			require.NoError(t, json.Unmarshal([]byte(b.tcCall(t, c.via, gateway.PathIn, c.p, c.file)), &in))
			id, err = strconv.ParseInt(in.Request, 10, 64)
			require.NoError(t, err)
		} else {
			id = b.tcSubmit(t, c.via, c.p, c.file)
		}
		task := b.jobTask(t, "alpha", "alpha", id)
		require.Equal(t, "ImageToTextTask", task["type"], c.via)
		require.Equal(t, base64.StdEncoding.EncodeToString(png1x1), task["body"], "%s: the image, whole", c.via)
		require.True(t, strings.HasPrefix(b.tcWait(t, alphaKey, id), "OK|"))
	}

	// A permanent failure and a dead letter, each by 2captcha's name, AnySolver's code in error_text.
	failed := b.tcSubmit(t, viaForm, params("key", alphaKey, "method", "userrecaptcha", "googlekey", "fail", "pageurl", page), nil)
	require.Equal(t, "ERROR_CAPTCHA_UNSOLVABLE", b.tcWait(t, alphaKey, failed))
	require.JSONEq(t, `{"status":0,"request":"ERROR_CAPTCHA_UNSOLVABLE","error_text":"DOMAIN_BANNED: This domain is not allowed."}`,
		b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "get", "id", fmt.Sprint(failed), "json", "1"), nil))
	dead := b.tcSubmit(t, viaForm, params("key", betaKey, "method", "turnstile", "sitekey", "dead", "pageurl", page), nil)
	require.Equal(t, "ERROR_CAPTCHA_UNSOLVABLE", b.tcWait(t, betaKey, dead))
	// ... and the same failure on the createTask protocol, in the anti-captcha dialect.
	requireError(t, b.call(t, gateway.MethodGetTaskResult, map[string]any{"clientKey": alphaKey, "taskId": failed}), 1, "ERROR_DOMAIN_NOT_ALLOWED")

	// ids=: each id's answer in the order asked; an unknown one is 2captcha's wrong id.
	want := fmt.Sprintf("03AG-%d|ERROR_CAPTCHA_UNSOLVABLE|ERROR_WRONG_CAPTCHA_ID|03AG-%d", solved, created)
	ids := fmt.Sprintf("%d,%d,%d,%d", solved, failed, dead, created) // dead is beta's: not alpha's to read
	require.Equal(t, want, b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "get", "ids", ids), nil))
	require.JSONEq(t, `{"status":1,"request":"`+want+`"}`,
		b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "get", "ids", ids, "json", "1"), nil))
	// Pending captchas read CAPCHA_NOT_READY, alone or in ids=.
	p1 := b.tcSubmit(t, viaForm, params("key", gammaKey, "method", "userrecaptcha", "googlekey", "solve", "pageurl", page), nil)
	p2 := b.tcSubmit(t, viaGET, params("key", gammaKey, "method", "userrecaptcha", "googlekey", "solve", "pageurl", page), nil)
	require.Equal(t, "CAPCHA_NOT_READY", b.tcCall(t, viaGET, gateway.PathRes, params("key", gammaKey, "action", "get", "id", fmt.Sprint(p1)), nil))
	require.JSONEq(t, `{"status":0,"request":"CAPCHA_NOT_READY"}`,
		b.tcCall(t, viaGET, gateway.PathRes, params("key", gammaKey, "action", "get", "id", fmt.Sprint(p1), "json", "1"), nil))
	require.Equal(t, "CAPCHA_NOT_READY|CAPCHA_NOT_READY",
		b.tcCall(t, viaGET, gateway.PathRes, params("key", gammaKey, "action", "get", "ids", fmt.Sprintf("%d,%d", p1, p2)), nil))

	// getbalance: what the workers published; before any, the service is not ready.
	require.Equal(t, "ERROR_NO_SLOT_AVAILABLE", b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "getbalance"), nil))
	require.NoError(t, balance.Write(context.Background(), b.rc, balance.Balance{Balance: 12.34, ReadAt: time.Now()}, 0))
	require.Equal(t, "12.34", b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "getbalance"), nil))
	require.JSONEq(t, `{"status":1,"request":"12.34"}`, b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "getbalance", "json", "1"), nil))

	// Reports: recorded for the key's own captcha and counted; another key's is not found.
	for _, action := range []string{"reportgood", "reportbad"} {
		require.Equal(t, "OK_REPORT_RECORDED", b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", action, "id", fmt.Sprint(solved)), nil))
		require.Equal(t, "ERROR_WRONG_CAPTCHA_ID", b.tcCall(t, viaGET, gateway.PathRes, params("key", betaKey, "action", action, "id", fmt.Sprint(solved)), nil))
		require.Equal(t, 1.0, testutil.ToFloat64(reportsCounter(t, b, action, "alpha", "RecaptchaV2TaskProxyless")))
	}
	require.Equal(t, 6.0, testutil.ToFloat64(requestsCounter(t, b, gateway.PathIn, "alpha", "ok")), "in.php counted by key")
	requireNoKeyInRedis(t, b.rc)
}

// TestTwoCaptchaTask: each in.php method becomes the task the createTask protocol takes for it.
func TestTwoCaptchaTask(t *testing.T) {
	t.Parallel()
	const page = "https://shop.example/login"
	tests := []struct {
		name string
		p    url.Values
		want map[string]any
	}{
		{"reCAPTCHA v2", params("method", "userrecaptcha", "googlekey", "k", "pageurl", page, "version", "v2", "enterprise", "0"),
			map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": page, "websiteKey": "k"}},
		{"reCAPTCHA v2 invisible, data-s, cookies, user agent", params("method", "userrecaptcha", "googlekey", "k", "pageurl", page,
			"invisible", "1", "data-s", "ds", "cookies", "a:1", "userAgent", "UA"),
			map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": page, "websiteKey": "k", "isInvisible": true,
				"recaptchaDataSValue": "ds", "cookies": "a:1", "userAgent": "UA"}},
		{"reCAPTCHA v2 Enterprise", params("method", "userrecaptcha", "googlekey", "k", "pageurl", page, "enterprise", "1"),
			map[string]any{"type": "RecaptchaV2EnterpriseTaskProxyless", "websiteURL": page, "websiteKey": "k"}},
		{"reCAPTCHA v3", params("method", "userrecaptcha", "googlekey", "k", "pageurl", page, "version", "v3", "action", "login", "min_score", "0.7"),
			map[string]any{"type": "RecaptchaV3TaskProxyless", "websiteURL": page, "websiteKey": "k", "pageAction": "login", "minScore": 0.7}},
		{"reCAPTCHA v3 Enterprise", params("method", "userrecaptcha", "googlekey", "k", "pageurl", page, "version", "v3", "enterprise", "1"),
			map[string]any{"type": "RecaptchaV3TaskProxyless", "websiteURL": page, "websiteKey": "k", "isEnterprise": true}},
		{"reCAPTCHA with a proxy", params("method", "userrecaptcha", "googlekey", "k", "pageurl", page,
			"proxy", "user:p@ss@10.0.0.7:3128", "proxytype", "SOCKS5"),
			map[string]any{"type": "RecaptchaV2Task", "websiteURL": page, "websiteKey": "k", "proxyType": "socks5",
				"proxyAddress": "10.0.0.7", "proxyPort": 3128, "proxyLogin": "user", "proxyPassword": "p@ss"}},
		{"a proxy without login, HTTP by default", params("method", "hcaptcha", "sitekey", "k", "pageurl", page, "proxy", "proxy.example:8080"),
			map[string]any{"type": "HCaptchaTask", "websiteURL": page, "websiteKey": "k", "proxyType": "http",
				"proxyAddress": "proxy.example", "proxyPort": 8080}},
		{"hCaptcha with data", params("method", "hcaptcha", "sitekey", "k", "pageurl", page, "invisible", "1", "data", "rq"),
			map[string]any{"type": "HCaptchaTaskProxyless", "websiteURL": page, "websiteKey": "k", "isInvisible": true,
				"enterprisePayload": map[string]any{"rqdata": "rq"}}},
		{"Turnstile", params("method", "turnstile", "sitekey", "k", "pageurl", page, "action", "a", "data", "cd"),
			map[string]any{"type": "TurnstileTaskProxyless", "websiteURL": page, "websiteKey": "k", "action": "a", "cData": "cd"}},
		{"FunCaptcha", params("method", "funcaptcha", "publickey", "pk", "pageurl", page, "surl", "https://api.funcaptcha.com"),
			map[string]any{"type": "FunCaptchaTaskProxyless", "websiteURL": page, "websitePublicKey": "pk", "funcaptchaApiJSSubdomain": "https://api.funcaptcha.com"}},
		{"an image with options", params("method", "base64", "body", "iVBORw0K", "phrase", "1", "regsense", "1", "calc", "1",
			"numeric", "2", "min_len", "4", "max_len", "6", "textinstructions", "red letters", "soft_id", "1"),
			map[string]any{"type": "ImageToTextTask", "body": "iVBORw0K", "phrase": true, "case": true, "math": true,
				"numeric": 2, "minLength": 4, "maxLength": 6, "comment": "red letters"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			task, bad := gateway.TwoCaptchaTask(tt.p)
			require.Nil(t, bad)
			require.Equal(t, tt.want, task)
		})
	}
}

// TestTwoCaptchaRefuses: every request that cannot be a job is answered with 2captcha's name for
// the fault, the gateway's own code in error_text, and nothing is queued.
func TestTwoCaptchaRefuses(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	const page = "https://shop.example/login"
	recaptcha := func(kv ...string) url.Values {
		return params(append([]string{"key", alphaKey, "method", "userrecaptcha", "googlekey", "k", "pageurl", page}, kv...)...)
	}
	tests := []struct {
		name string
		path string
		p    url.Values
		want string
		text string
	}{
		{"no key", gateway.PathIn, params("method", "userrecaptcha"), "ERROR_WRONG_USER_KEY", "key is missing"},
		{"an unknown key", gateway.PathIn, params("key", "gk-nobody-000000000000", "method", "userrecaptcha"), "ERROR_KEY_DOES_NOT_EXIST", "not a key"},
		{"no pageurl", gateway.PathIn, params("key", alphaKey, "method", "userrecaptcha", "googlekey", "k"), "ERROR_PAGEURL", "task.websiteURL"},
		{"a pageurl that is no URL", gateway.PathIn, recaptcha("pageurl", "notaurl"), "ERROR_PAGEURL", "INVALID_WEBSITEURL"},
		{"no googlekey", gateway.PathIn, params("key", alphaKey, "method", "userrecaptcha", "pageurl", page), "ERROR_GOOGLEKEY", "task.websiteKey"},
		{"no sitekey for Turnstile", gateway.PathIn, params("key", alphaKey, "method", "turnstile", "pageurl", page), "ERROR_GOOGLEKEY", "task.websiteKey"},
		{"no publickey for FunCaptcha", gateway.PathIn, params("key", alphaKey, "method", "funcaptcha", "pageurl", page), "ERROR_BAD_PARAMETERS", "publickey"},
		{"no image", gateway.PathIn, params("key", alphaKey, "method", "base64"), "ERROR_ZERO_CAPTCHA_FILESIZE", "no image"},
		{"an image that is not base64", gateway.PathIn, params("key", alphaKey, "method", "base64", "body", "@@@"), "ERROR_UPLOAD", "IMAGE_CORRUPTED"},
		{"no method", gateway.PathIn, params("key", alphaKey), "ERROR_BAD_PARAMETERS", "method is required"},
		{"a method not served", gateway.PathIn, params("key", alphaKey, "method", "geetest"), "ERROR_BAD_PARAMETERS", "userrecaptcha"},
		{"a bad version", gateway.PathIn, recaptcha("version", "v9"), "ERROR_BAD_PARAMETERS", "version"},
		{"a bad min_score", gateway.PathIn, recaptcha("version", "v3", "min_score", "high"), "ERROR_BAD_PARAMETERS", "min_score"},
		{"a bad proxy", gateway.PathIn, recaptcha("proxy", "nonsense"), "ERROR_BAD_PROXY", "proxy"},
		{"a bad proxytype", gateway.PathIn, recaptcha("proxy", "h.example:1", "proxytype", "FTP"), "ERROR_BAD_PARAMETERS", "task.proxyType"},
		{"a pingback to a private address", gateway.PathIn, recaptcha("pingback", "http://10.0.0.1/hook"), "ERROR_BAD_PARAMETERS", "public addresses only"},
		{"a pingback to this machine", gateway.PathIn, recaptcha("pingback", "http://localhost:9/hook"), "ERROR_BAD_PARAMETERS", "this machine"},
		{"a pingback that is no URL", gateway.PathIn, recaptcha("pingback", "ftp://x"), "ERROR_BAD_PARAMETERS", "callbackUrl"},
		{"no action", gateway.PathRes, params("key", alphaKey), "ERROR_EMPTY_ACTION", "action"},
		{"an action not served", gateway.PathRes, params("key", alphaKey, "action", "deletecaptcha"), "ERROR_BAD_PARAMETERS", "action"},
		{"an id that is no number", gateway.PathRes, params("key", alphaKey, "action", "get", "id", "12ab"), "ERROR_WRONG_ID_FORMAT", "id"},
		{"no id", gateway.PathRes, params("key", alphaKey, "action", "get"), "ERROR_WRONG_ID_FORMAT", "id"},
		{"an id nobody was given", gateway.PathRes, params("key", alphaKey, "action", "get", "id", "123456"), "ERROR_WRONG_CAPTCHA_ID", "TASK_NOT_FOUND"},
		{"an id past 2^53", gateway.PathRes, params("key", alphaKey, "action", "get", "id", "9007199254740993"), "ERROR_WRONG_CAPTCHA_ID", ""},
		{"ids with one malformed", gateway.PathRes, params("key", alphaKey, "action", "get", "ids", "1,x"), "ERROR_WRONG_ID_FORMAT", ""},
		{"a report on no id", gateway.PathRes, params("key", alphaKey, "action", "reportbad", "id", "77"), "ERROR_WRONG_CAPTCHA_ID", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, via := range []string{viaGET, viaForm, viaMultipart} {
				require.Equal(t, tt.want, b.tcCall(t, via, tt.path, tt.p, nil), via)
			}
			p := url.Values{}
			for k, v := range tt.p {
				p[k] = v
			}
			p.Set("json", "1")
			var a struct {
				Status    *int   `json:"status"`
				Request   string `json:"request"`
				ErrorText string `json:"error_text"`
			}
			body := b.tcCall(t, viaGET, tt.path, p, nil)
			require.NoError(t, json.Unmarshal([]byte(body), &a), body)
			require.NotNil(t, a.Status)
			require.Zero(t, *a.Status)
			require.Equal(t, tt.want, a.Request)
			require.NotEmpty(t, a.ErrorText)
			require.Contains(t, a.ErrorText, tt.text)
		})
	}
	// A body over --max-body.
	huge := params("key", alphaKey, "method", "base64", "body", strings.Repeat("A", gateway.MaxBodyDefault))
	require.Equal(t, "ERROR_TOO_BIG_CAPTCHA_FILESIZE", b.tcCall(t, viaForm, gateway.PathIn, huge, nil))
	require.Equal(t, "ERROR_TOO_BIG_CAPTCHA_FILESIZE", b.tcCall(t, viaMultipart, gateway.PathIn, params("key", alphaKey, "method", "post"),
		&tcFile{"big.png", bytes.Repeat([]byte{1}, gateway.MaxBodyDefault)}))
	// Neither GET nor POST.
	req, err := http.NewRequest(http.MethodPut, b.url+"/in.php", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	require.Equal(t, "GET, POST", resp.Header.Get("Allow"))
	requireNothingQueued(t, b)
}

// TestTwoCaptchaSpentBudget: on 2captcha's protocol, a key whose queue's budget is spent gets
// ERROR_ZERO_BALANCE from in.php with nothing queued, and getbalance answers the window's room.
func TestTwoCaptchaSpentBudget(t *testing.T) {
	t.Parallel()
	b, policy := setupBudget(t, "queues:\n  alpha:\n    budget: {window: 1h, maxCost: 0.01, maxCreateTasks: 2, estimatedCost: 0.002}\n")
	submit := params("key", alphaKey, "method", "turnstile", "sitekey", "k", "pageurl", "https://shop.example/")

	require.Equal(t, "0.01", b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "getbalance"), nil))
	b.tcSubmit(t, viaForm, submit, nil)
	lg := ledger.New(b.rc)
	for range 2 {
		_, ok, _, err := lg.Reserve(context.Background(), "alpha", *policy.Queue("alpha").Budget, "")
		require.NoError(t, err)
		require.True(t, ok)
	}
	require.Equal(t, "ERROR_ZERO_BALANCE", b.tcCall(t, viaForm, gateway.PathIn, submit, nil))
	requirePending(t, b, "alpha", 1)
	require.Equal(t, "0.006", b.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "getbalance"), nil))
}
