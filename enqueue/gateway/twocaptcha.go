package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/dialect"
)

// 2captcha's protocol: its two paths, served beside the createTask methods on the same port
// and keys (the key= parameter is a gateway key).
const (
	PathIn  = "in.php"  // submits a captcha: GET, POST form, POST multipart or POST JSON
	PathRes = "res.php" // reads answers, the balance, and takes reports
)

// TwoCaptchaNotReady is res.php's answer for a captcha not solved yet (sic: 2captcha's spelling).
const TwoCaptchaNotReady = "CAPCHA_NOT_READY"

// 2captcha's other answer that is not an error, and its errors that no code in CodeTable gives.
const (
	tcReportRecorded = "OK_REPORT_RECORDED"
	tcWrongUserKey   = "ERROR_WRONG_USER_KEY"
	tcWrongIDFormat  = "ERROR_WRONG_ID_FORMAT"
	tcEmptyAction    = "ERROR_EMPTY_ACTION"
	tcZeroFilesize   = dialect.ZeroSize
	tcBadParameters  = dialect.BadParameters
	tcBadProxy       = dialect.BadProxy
	tcPageURL        = "ERROR_PAGEURL"
	tcTooBigFilesize = dialect.TooBig
)

// maxTwoCaptchaIDs bounds the ids= list of one res.php request.
const maxTwoCaptchaIDs = 100

// tcMethods lists the in.php methods the gateway serves.
const tcMethods = "userrecaptcha, hcaptcha, turnstile, funcaptcha, base64, post"

// twoCaptchaPath reports whether a request path is one of 2captcha's, and which.
func twoCaptchaPath(path string) (string, bool) {
	switch p := strings.Trim(path, "/"); p {
	case PathIn, PathRes:
		return p, true
	}
	return "", false
}

// tcAnswer is one answer of 2captcha's protocol. status is 1 for success; request is what JSON
// answers carry in "request", plain what a plain-text answer is (they differ for "OK|..." and
// the balance). errorText explains an error.
type tcAnswer struct {
	status    int
	request   string
	plain     string
	errorText string
}

func tcOK(request, plain string) tcAnswer { return tcAnswer{status: 1, request: request, plain: plain} }

func tcError(code, format string, args ...any) tcAnswer {
	return tcAnswer{request: code, plain: code, errorText: fmt.Sprintf(format, args...)}
}

// tcFromError turns an error of the shared request path into 2captcha's answer: an apiError by
// CodeTable (its own code kept in error_text), anything else as the gateway's trouble.
func (h *Handler) tcFromError(path, keyName string, err error) tcAnswer {
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return tcError(gatewayRow(apiErr.code).TwoCaptcha, "%s: %s", apiErr.code, apiErr.description)
	}
	h.cfg.Logger.Error("gateway: request failed", "method", path, "key", keyName, "err", err)
	return tcError(gatewayRow(CodeInternalError).TwoCaptcha, "%s: the gateway could not reach its queue; try again in a few seconds", CodeInternalError)
}

// serveTwoCaptcha answers one request of 2captcha's protocol: HTTP 200 and plain text, or JSON
// with json=1 ({"status":1,"request":...}; errors {"status":0,"request":"ERROR_...","error_text":...}).
func (h *Handler) serveTwoCaptcha(w http.ResponseWriter, r *http.Request, path string) {
	began := h.cfg.Now()
	hdr := w.Header()
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	var keyName string
	var a tcAnswer
	params, perr := h.tcParams(w, r)
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodPost:
		hdr.Set("Allow", "GET, POST")
		keyName, a = noKey, tcError(tcBadParameters, "%s takes GET or POST", path)
	case perr != nil:
		keyName, a = noKey, *perr
	default:
		keyName, a = h.twoCaptcha(r, path, params)
	}
	if params == nil {
		params = r.URL.Query()
	}
	var data []byte
	if params.Get("json") == "1" {
		hdr.Set("Content-Type", "application/json")
		data, _ = json.Marshal(struct {
			Status    int    `json:"status"`
			Request   string `json:"request"`
			ErrorText string `json:"error_text,omitempty"`
		}{a.status, a.request, a.errorText})
	} else {
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		data = []byte(a.plain)
	}
	status := http.StatusOK
	if hdr.Get("Allow") != "" {
		status = http.StatusMethodNotAllowed
	}
	hdr.Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(status)
	_, _ = w.Write(data)
	code := ""
	if a.status != 1 && a.request != TwoCaptchaNotReady {
		code = a.request
	}
	h.cfg.Metrics.answered(path, keyName, code, h.cfg.Now().Sub(began))
}

// tcParams reads a request's parameters: the query string, and a POST body as a form,
// multipart form (an image as the file part "file", sent on as base64 in "body") or JSON
// object (as @2captcha/captcha-solver sends images). The body's parameters win over the query's.
func (h *Handler) tcParams(w http.ResponseWriter, r *http.Request) (url.Values, *tcAnswer) {
	params := r.URL.Query()
	if r.Method != http.MethodPost {
		return params, nil
	}
	tooBig := tcError(tcTooBigFilesize, "%s: the request body is over %d bytes, the most this gateway reads (--max-body)", CodeImageTooLarge, h.cfg.MaxBody)
	if r.ContentLength > h.cfg.MaxBody {
		return params, &tooBig
	}
	r.Body = http.MaxBytesReader(w, r.Body, h.cfg.MaxBody)
	bad := func(err error) (url.Values, *tcAnswer) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return params, &tooBig
		}
		a := tcError(tcBadParameters, "the request body could not be read: %v", err)
		return params, &a
	}
	media, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch media {
	case "multipart/form-data":
		if err := r.ParseMultipartForm(h.cfg.MaxBody); err != nil {
			return bad(err)
		}
		defer r.MultipartForm.RemoveAll()
		for k, vs := range r.MultipartForm.Value {
			params[k] = vs
		}
		if fhs := r.MultipartForm.File["file"]; len(fhs) > 0 {
			f, err := fhs[0].Open()
			if err != nil {
				return bad(err)
			}
			raw, err := io.ReadAll(f)
			f.Close()
			if err != nil {
				return bad(err)
			}
			params.Set("body", base64.StdEncoding.EncodeToString(raw))
		}
	case "application/json":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return bad(err)
		}
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.UseNumber()
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			a := tcError(tcBadParameters, "the request body is not a JSON object")
			return params, &a
		}
		for k, v := range obj {
			switch v := v.(type) {
			case string:
				params.Set(k, v)
			case json.Number:
				params.Set(k, v.String())
			case bool:
				params.Set(k, map[bool]string{true: "1", false: "0"}[v])
			}
		}
	default:
		if err := r.ParseForm(); err != nil {
			return bad(err)
		}
		for k, vs := range r.PostForm {
			params[k] = vs
		}
	}
	return params, nil
}

// twoCaptcha answers one request of 2captcha's protocol and says which key asked.
func (h *Handler) twoCaptcha(r *http.Request, path string, params url.Values) (string, tcAnswer) {
	clientKey := params.Get("key")
	if clientKey == "" {
		return noKey, tcError(tcWrongUserKey, "key is missing: send the gateway key as key=")
	}
	key, aerr := h.authenticate(r, clientKey)
	if aerr != nil {
		return noKey, tcError(gatewayRow(aerr.code).TwoCaptcha, "%s: %s", aerr.code, aerr.description)
	}
	ctx, cancel := context.WithTimeout(r.Context(), RequestTimeoutDefault)
	defer cancel()
	if path == PathIn {
		return key.Name, h.tcIn(ctx, r, key, params)
	}
	if err := h.allow(ctx, key); err != nil {
		return key.Name, h.tcFromError(path, key.Name, err)
	}
	return key.Name, h.tcRes(ctx, key, params)
}

// tcIn submits a captcha: it builds the task the createTask protocol would take for it and
// submits it the same way (validated exactly as enqueue validates, nothing queued otherwise),
// counted against its key's rate limit as createTask is.
func (h *Handler) tcIn(ctx context.Context, r *http.Request, key Key, params url.Values) tcAnswer {
	rate := &rateCount{key: key}
	task, bad := twoCaptchaTask(params)
	if bad != nil {
		if err := h.settle(ctx, rate, nil); err != nil {
			return h.tcFromError(PathIn, key.Name, err)
		}
		return *bad
	}
	job := enqueue.Job{Queue: key.Queue, Task: task, KeyName: key.Name, CallbackURL: params.Get("pingback")}
	id, err := h.submit(ctx, rate, job, r.Header.Get(IdempotencyHeader), []byte(canonicalParams(params)))
	if err = h.settle(ctx, rate, err); err != nil {
		return h.tcFromError(PathIn, key.Name, err)
	}
	s := strconv.FormatInt(id, 10)
	return tcOK(s, "OK|"+s)
}

// canonicalParams is the request as an Idempotency-Key compares it: every parameter but the
// key, sorted.
func canonicalParams(params url.Values) string {
	c := url.Values{}
	for k, vs := range params {
		if k != "key" {
			c[k] = vs
		}
	}
	return c.Encode()
}

// twoCaptchaTask builds, from the parameters of a 2captcha in.php request, the task object the
// createTask protocol takes for the same captcha:
//
//	userrecaptcha  RecaptchaV2TaskProxyless (RecaptchaV2EnterpriseTaskProxyless with enterprise=1,
//	               RecaptchaV3TaskProxyless with version=v3: action, min_score); invisible=1
//	hcaptcha       HCaptchaTaskProxyless
//	turnstile      TurnstileTaskProxyless (action, data)
//	funcaptcha     FunCaptchaTaskProxyless (surl, data)
//	base64, post   ImageToTextTask (body=, or the multipart file "file")
//
// A token task with proxy= (login:pass@host:port) and proxytype= drops "Proxyless" and carries
// the proxy in the createTask protocol's fields. It answers 2captcha's error for a request that
// cannot be a task; everything else is left to the job's validation.
func twoCaptchaTask(params url.Values) (map[string]any, *tcAnswer) {
	method := params.Get("method")
	pageURL := params.Get("pageurl")
	task := map[string]any{}
	setStr := func(field, param string) {
		if v := params.Get(param); v != "" {
			task[field] = v
		}
	}
	typ := ""
	switch method {
	case "userrecaptcha":
		task["websiteURL"], task["websiteKey"] = pageURL, params.Get("googlekey")
		enterprise := params.Get("enterprise") == "1"
		switch strings.ToLower(params.Get("version")) {
		case "v3":
			typ = "RecaptchaV3TaskProxyless"
			if enterprise {
				task["isEnterprise"] = true
			}
			setStr("pageAction", "action")
			if s := params.Get("min_score"); s != "" {
				score, err := strconv.ParseFloat(s, 64)
				if err != nil {
					a := tcError(tcBadParameters, "min_score must be a number such as 0.3, got %q", s)
					return nil, &a
				}
				task["minScore"] = score
			}
		case "", "v2":
			typ = "RecaptchaV2TaskProxyless"
			if enterprise {
				typ = "RecaptchaV2EnterpriseTaskProxyless"
			}
			if params.Get("invisible") == "1" {
				task["isInvisible"] = true
			}
			setStr("recaptchaDataSValue", "data-s")
		default:
			a := tcError(tcBadParameters, "version must be v2 or v3, got %q", params.Get("version"))
			return nil, &a
		}
		setStr("cookies", "cookies")
	case "hcaptcha":
		typ = "HCaptchaTaskProxyless"
		task["websiteURL"], task["websiteKey"] = pageURL, params.Get("sitekey")
		if params.Get("invisible") == "1" {
			task["isInvisible"] = true
		}
		if d := params.Get("data"); d != "" {
			task["enterprisePayload"] = map[string]any{"rqdata": d}
		}
	case "turnstile":
		typ = "TurnstileTaskProxyless"
		task["websiteURL"], task["websiteKey"] = pageURL, params.Get("sitekey")
		setStr("action", "action")
		setStr("cData", "data")
	case "funcaptcha":
		// enqueue checks no field of a FunCaptcha task; 2captcha requires these two.
		if pageURL == "" {
			a := tcError(tcPageURL, "pageurl is required for method=funcaptcha")
			return nil, &a
		}
		if params.Get("publickey") == "" {
			a := tcError(tcBadParameters, "publickey is required for method=funcaptcha")
			return nil, &a
		}
		typ = "FunCaptchaTaskProxyless"
		task["websiteURL"], task["websitePublicKey"] = pageURL, params.Get("publickey")
		setStr("funcaptchaApiJSSubdomain", "surl")
		setStr("data", "data")
	case "base64", "post":
		body := params.Get("body")
		if strings.TrimSpace(body) == "" {
			a := tcError(tcZeroFilesize, "no image: send it as body= (method=base64) or as the multipart file \"file\" (method=post)")
			return nil, &a
		}
		task["type"], task["body"] = "ImageToTextTask", body
		for param, field := range map[string]string{"phrase": "phrase", "regsense": "case", "calc": "math"} {
			if params.Get(param) == "1" {
				task[field] = true
			}
		}
		for param, field := range map[string]string{"numeric": "numeric", "min_len": "minLength", "max_len": "maxLength"} {
			if n, err := strconv.Atoi(params.Get(param)); err == nil && n > 0 {
				task[field] = n
			}
		}
		setStr("comment", "textinstructions")
		return task, nil
	case "":
		a := tcError(tcBadParameters, "method is required: one of %s", tcMethods)
		return nil, &a
	default:
		a := tcError(tcBadParameters, "method=%s is not served by this gateway; it serves %s", truncate(method, 32), tcMethods)
		return nil, &a
	}
	if ua := params.Get("userAgent"); ua != "" {
		task["userAgent"] = ua
	}
	if proxy := params.Get("proxy"); proxy != "" {
		if bad := setProxy(task, proxy, params.Get("proxytype")); bad != nil {
			return nil, bad
		}
		typ = strings.TrimSuffix(typ, "Proxyless")
	}
	task["type"] = typ
	return task, nil
}

// setProxy puts a 2captcha proxy (login:pass@host:port or host:port, and its type, HTTP by
// default) in the createTask protocol's proxy fields.
func setProxy(task map[string]any, proxy, proxyType string) *tcAnswer {
	bad := tcError(tcBadProxy, "proxy must be login:password@host:port or host:port")
	creds, hostPort := "", proxy
	if i := strings.LastIndex(proxy, "@"); i >= 0 {
		creds, hostPort = proxy[:i], proxy[i+1:]
	}
	i := strings.LastIndex(hostPort, ":")
	if i <= 0 {
		return &bad
	}
	port, err := strconv.Atoi(hostPort[i+1:])
	if err != nil {
		return &bad
	}
	if proxyType == "" {
		proxyType = "http"
	}
	task["proxyType"] = strings.ToLower(proxyType)
	task["proxyAddress"] = strings.Trim(hostPort[:i], "[]")
	task["proxyPort"] = port
	if creds != "" {
		login, password, _ := strings.Cut(creds, ":")
		task["proxyLogin"], task["proxyPassword"] = login, password
	}
	return nil
}

// tcRes answers res.php: action=get (id= or ids=), getbalance, reportgood, reportbad.
func (h *Handler) tcRes(ctx context.Context, key Key, params url.Values) tcAnswer {
	switch action := params.Get("action"); action {
	case "get":
		if ids := params.Get("ids"); ids != "" {
			return h.tcGetMany(ctx, key, ids)
		}
		id, bad := tcID(params.Get("id"))
		if bad != nil {
			return *bad
		}
		a, err := h.tcGet(ctx, key, id)
		if err != nil {
			return h.tcFromError(PathRes, key.Name, err)
		}
		if a.status == 1 {
			a.plain = "OK|" + a.plain
		}
		return a
	case "getbalance":
		b, err := h.getBalance(ctx, key)
		if err != nil {
			return h.tcFromError(PathRes, key.Name, err)
		}
		s := strconv.FormatFloat(*b.Balance, 'f', -1, 64)
		return tcOK(s, s)
	case "reportgood", "reportbad":
		id, bad := tcID(params.Get("id"))
		if bad != nil {
			return *bad
		}
		jobID, err := h.ids.JobID(ctx, key.Name, id)
		if err != nil {
			return h.tcFromError(PathRes, key.Name, err)
		}
		typ, err := h.client.TaskTypeIn(ctx, key.Queue, jobID)
		if errors.Is(err, enqueue.ErrJobNotFound) {
			return tcNotFound(id)
		}
		if err != nil {
			return h.tcFromError(PathRes, key.Name, err)
		}
		h.cfg.Metrics.reported(action, key.Name, typ)
		return tcOK(tcReportRecorded, tcReportRecorded)
	case "":
		return tcError(tcEmptyAction, "action is required: get, getbalance, reportgood or reportbad")
	default:
		return tcError(tcBadParameters, "action=%s is not served by this gateway; it serves get, getbalance, reportgood, reportbad", truncate(action, 32))
	}
}

// tcID reads a captcha id: a positive number. One out of the taskId range is never one of ours
// and is simply not found.
func tcID(s string) (int64, *tcAnswer) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		a := tcError(tcWrongIDFormat, "id must be the number in.php answered, got %q", truncate(s, 32))
		return 0, &a
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > MaxTaskID {
		return 0, nil
	}
	return n, nil
}

func tcNotFound(id int64) tcAnswer {
	return tcError(gatewayRow(CodeTaskNotFound).TwoCaptcha, "%s: %d is not a captcha of this key, or its answer is no longer kept", CodeTaskNotFound, id)
}

// tcGet answers one id: the answer (plain without "OK|"), CAPCHA_NOT_READY, or the outcome's
// error by CodeTable, AnySolver's own code kept in error_text.
func (h *Handler) tcGet(ctx context.Context, key Key, id int64) (tcAnswer, error) {
	if id == 0 {
		return tcNotFound(id), nil
	}
	jobID, err := h.ids.JobID(ctx, key.Name, id)
	if err != nil {
		return tcAnswer{}, err
	}
	out, err := h.status(ctx, key, jobID)
	if errors.Is(err, enqueue.ErrJobNotFound) {
		return tcNotFound(id), nil
	}
	if err != nil {
		return tcAnswer{}, err
	}
	switch out.State {
	case enqueue.StateSolved:
		h.tokenRead(ctx, PathRes, key, jobID, out)
		text := solutionText(out.Solution)
		return tcOK(text, text), nil
	case enqueue.StateFailed, enqueue.StateDead:
		if e := out.Error; e != nil {
			return tcError(outcomeRow(e.ErrorCode).TwoCaptcha, "%s: %s", e.ErrorCode, e.ErrorDescription), nil
		}
		return tcError(codeUnsolvable, "the job ended %s", out.State), nil
	default:
		return tcAnswer{request: TwoCaptchaNotReady, plain: TwoCaptchaNotReady}, nil
	}
}

// tcGetMany answers ids=: each id's answer, CAPCHA_NOT_READY or error, joined by "|" in the
// order asked.
func (h *Handler) tcGetMany(ctx context.Context, key Key, list string) tcAnswer {
	parts := strings.Split(list, ",")
	if len(parts) > maxTwoCaptchaIDs {
		return tcError(tcBadParameters, "ids lists %d ids; at most %d", len(parts), maxTwoCaptchaIDs)
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		id, bad := tcID(p)
		if bad != nil {
			return *bad
		}
		a, err := h.tcGet(ctx, key, id)
		if err != nil {
			return h.tcFromError(PathRes, key.Name, err)
		}
		out[i] = a.request
	}
	joined := strings.Join(out, "|")
	return tcOK(joined, joined)
}

// solutionText is a solution as 2captcha answers it: the token (gRecaptchaResponse or token),
// the image's text, or else the solution object as compact JSON.
func solutionText(solution json.RawMessage) string {
	var fields map[string]any
	if json.Unmarshal(solution, &fields) == nil {
		for _, k := range []string{"gRecaptchaResponse", "token", "text"} {
			if s, ok := fields[k].(string); ok && s != "" {
				return s
			}
		}
	}
	var compact bytes.Buffer
	if json.Compact(&compact, solution) == nil && compact.Len() > 0 {
		return compact.String()
	}
	return "{}"
}
