package enqueue_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

// Fuzz targets for what reaches solvequeue from outside: batch files (FuzzReadJobs; the single
// line is FuzzParseJob in job_test.go), payloads found in Redis (FuzzDecodePayload), and the
// redaction of what is shown (FuzzRedactJSON, FuzzRedactText). Seed corpora live in
// testdata/fuzz/<target>; run one with, e.g.:
//
//	go test ./enqueue -run '^$' -fuzz '^FuzzReadJobs$' -fuzztime 30s

// FuzzReadJobs checks that a batch file is either refused whole, naming each bad line, or read
// whole into valid jobs with ids that come out the same on every read (what makes a batch
// resumable), never a panic.
func FuzzReadJobs(f *testing.F) {
	f.Add([]byte(`{"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"}}` + "\n" +
		"\n# a comment\n" + `{"id":"x-1","queue":"low","task":{"type":"ImageToTextTask","body":"iVBORw0KGgo="}}` + "\n"))
	f.Add([]byte(`{"task":{"type":"X"}}` + "\r\n" + `{"task":{"type":"X"}}` + "\r\n"))
	f.Add([]byte("{\"task\":{\"type\":\"X\"}}\n{\"task\":{}}\nnot json\n{\"id\":\"a b\",\"task\":{\"type\":\"X\"}}\n"))
	f.Add([]byte(`{"task":{"type":"X"}}`)) // no final newline
	f.Add([]byte("\xef\xbb\xbf{\"task\":{\"type\":\"X\"}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lines := bytes.Count(data, []byte("\n")) + 1
		jobs, err := enqueue.ReadJobs(bytes.NewReader(data))
		if err != nil {
			require.Nil(t, jobs, "a refused file gives no jobs")
			var batchErr *enqueue.BatchError
			require.ErrorAs(t, err, &batchErr)
			require.NotEmpty(t, batchErr.Lines)
			prev := 0
			for _, l := range batchErr.Lines {
				require.Greater(t, l.Line, prev, "bad lines in order, each once")
				require.LessOrEqual(t, l.Line, lines)
				require.NotEmpty(t, l.Err.Error())
				prev = l.Line
			}
			return
		}
		again, err := enqueue.ReadJobs(bytes.NewReader(data))
		require.NoError(t, err)
		require.Len(t, again, len(jobs))
		prev := 0
		derived := map[string]bool{}
		for i, j := range jobs {
			require.Greater(t, j.Line, prev)
			require.LessOrEqual(t, j.Line, lines)
			prev = j.Line
			require.NoError(t, j.Job.Validate(), "line %d", j.Line)
			require.NotEmpty(t, j.Job.ID)
			require.Equal(t, j.Job.ID, again[i].Job.ID, "line %d gets another id on a second read", j.Line)
			if strings.HasPrefix(j.Job.ID, "line-") {
				require.False(t, derived[j.Job.ID], "two lines derive the id %s", j.Job.ID)
				derived[j.Job.ID] = true
			}
		}
	})
}

// FuzzDecodePayload checks what a worker does with whatever it finds in Redis under our task
// type: a payload it accepts reads back the same after encoding, one it refuses gets a reason
// that never quotes the job's proxy password (planted in the task, in the field or the URL
// form), and nothing panics.
func FuzzDecodePayload(f *testing.F) {
	f.Add([]byte(`{"v":1,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le"},"submittedAt":"2026-01-02T03:04:05Z"}`), "hunter22")
	f.Add([]byte(`{"v":1,"task":{"type":"ImageToTextTask"},"bodyRef":"solvequeue:blob:ab","deadline":"2030-01-01T00:00:00Z","maxRetries":3}`), "x")
	f.Add([]byte(`{"v":1,"task":{"type":"RecaptchaV2Task","websiteURL":"https://a.example","websiteKey":"k","proxy":"http://u:hunter22@h:1"}}`), "p@ss")
	f.Add([]byte(`{"v":1,"task":{"type":"X","proxyType":"ftp","proxyAddress":"h","proxyPort":1}}`), "hunter22")
	f.Add([]byte(`{"v":1,"task":{"type":"X","proxyType":"http","proxyAddress":"h","proxyPort":0}}`), "pw")
	f.Add([]byte(`{"v":2,"task":{"type":"X"}}`), "")
	f.Add([]byte(`garbage{{`), "")
	f.Add([]byte(`null`), "")
	f.Fuzz(func(t *testing.T, data []byte, password string) {
		checkPayload(t, data)
		var raw map[string]any
		task, ok := map[string]any(nil), false
		if json.Unmarshal(data, &raw) == nil {
			task, ok = raw["task"].(map[string]any)
		}
		if !ok {
			return
		}
		secret := "\u00a7" + password + "\u00a7" // a marker no error text has of its own
		if len(password)%2 == 0 {
			task["proxyPassword"] = secret
		} else {
			task["proxy"] = "http://u:" + secret + "@proxy.example:3128"
		}
		planted, err := json.Marshal(raw)
		require.NoError(t, err)
		if _, err := checkPayload(t, planted); err != nil {
			require.NotContains(t, err.Error(), secret, "the refusal quotes the proxy password")
		}
	})
}

// checkPayload decodes a payload and, when it is accepted, checks it reads back the same.
func checkPayload(t *testing.T, data []byte) (enqueue.Payload, error) {
	p, err := enqueue.DecodePayload(data)
	if err != nil {
		require.NotEmpty(t, err.Error())
		return p, err
	}
	require.Equal(t, enqueue.PayloadVersion, p.V)
	require.NotEmpty(t, p.TaskType())
	enc, err := json.Marshal(p)
	require.NoError(t, err)
	back, err := enqueue.DecodePayload(enc)
	require.NoError(t, err, "an accepted payload must read back: %s", enc)
	require.Equal(t, p.TaskType(), back.TaskType())
	require.Equal(t, p.BodyRef, back.BodyRef)
	require.True(t, p.Deadline.Equal(back.Deadline))
	return p, nil
}

// FuzzRedactJSON checks that whatever JSON is shown through RedactJSON keeps no secret that
// SecretValues can find: every secret-named field and every URL password reads "[redacted]".
// Text that is not JSON is never echoed.
func FuzzRedactJSON(f *testing.F) {
	f.Add([]byte(`{"type":"RecaptchaV2Task","proxyLogin":"bob","proxyPassword":"hunter2"}`))
	f.Add([]byte(`{"task":{"proxy":"socks5://u:p@ss@h:1080","settings":{"apiKey":123,"nested":[{"secret":{"a":1}}]}}}`))
	f.Add([]byte(`["http://a:b@c:1", {"clientKey": null}, {"Proxy_Password": ""}]`))
	f.Add([]byte(`"http://user:pass@host:1"`))
	f.Add([]byte(`not json at all: http://user:pass@host:1`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out := enqueue.RedactJSON(data)
		require.True(t, json.Valid(out), "RedactJSON gave invalid JSON: %s", out)
		var v any
		if json.Unmarshal(data, &v) != nil {
			require.Equal(t, `"(not JSON; hidden)"`, string(out), "text that is not JSON is never echoed")
			return
		}
		var shown any
		require.NoError(t, json.Unmarshal(out, &shown))
		for _, s := range enqueue.SecretValues(shown) {
			if s != enqueue.Redacted && s != "%5Bredacted%5D" {
				t.Fatalf("a secret survived redaction: %q in %s", s, out)
			}
		}
	})
}

// FuzzRedactText checks that a secret handed to RedactText is gone from the text (markers
// aside), that no URL password survives, and that redacting twice changes nothing.
func FuzzRedactText(f *testing.F) {
	f.Add("proxy http://alice:hunter22@203.0.113.7:8080 refused (password hunter22)", "hunter22")
	f.Add("socks5://u:p@ss@h:1080 and https://x.example/a@b", "p@ss")
	f.Add("no secret here", "ab")
	f.Add("aaaa", "aaa")
	f.Add("[redacted]a ed]a", "ed]a")
	f.Fuzz(func(t *testing.T, text, secret string) {
		out := enqueue.RedactText(text, secret)
		if len(secret) >= 3 && !strings.Contains(secret, "\x00") {
			collapsed := strings.ReplaceAll(out, enqueue.Redacted, "\x00")
			require.NotContains(t, collapsed, secret, "in %q", out)
			if isASCII(secret) { // in another case, or escaped, it is gone too
				for _, form := range []string{strings.ToUpper(secret), strings.ToLower(secret), url.QueryEscape(secret), url.PathEscape(secret)} {
					collapsed := strings.ReplaceAll(enqueue.RedactText(text+" "+form, secret), enqueue.Redacted, "\x00")
					require.NotContains(t, collapsed, form, "in %q", collapsed)
				}
			}
		}
		require.Equal(t, enqueue.RedactText(out), enqueue.RedactText(enqueue.RedactText(out)), "not idempotent")
		for _, word := range strings.Fields(enqueue.RedactText(text)) {
			for _, s := range enqueue.SecretValues(word) {
				if s != enqueue.Redacted && s != "%5Bredacted%5D" && strings.Contains(word, "://") {
					t.Fatalf("a URL password survived: %q in %q", s, word)
				}
			}
		}
	})
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// FuzzRedactJSONSecrets checks that a value passed through RedactJSONSecrets is JSON, keeps no
// given secret, and is unchanged when there was nothing to cut.
func FuzzRedactJSONSecrets(f *testing.F) {
	f.Add([]byte(`{"token":"03AGdBq24","clientKey":"sk-live-7f3a"}`), "sk-live-7f3a")
	f.Add([]byte(`{"t":"SK\u002dLIVE"}`), "sk-live")
	f.Add([]byte(`[1, 2.50, {"a":"b"}]`), "zzz")
	f.Add([]byte(`not json`), "json")
	f.Fuzz(func(t *testing.T, data []byte, secret string) {
		out := enqueue.RedactJSONSecrets(data, secret)
		if len(data) == 0 {
			require.Empty(t, out)
			return
		}
		if json.Valid(data) && enqueue.RedactText(string(data), secret) == string(data) {
			require.Equal(t, string(data), string(out), "nothing to cut: unchanged")
			return
		}
		require.True(t, json.Valid(out), "not JSON: %s", out)
		if len(secret) >= 3 && utf8.ValidString(secret) && !strings.Contains(secret, "\x00") {
			dec := json.NewDecoder(bytes.NewReader(out))
			dec.UseNumber()
			var v any
			require.NoError(t, dec.Decode(&v))
			for _, s := range jsonTexts(v) {
				collapsed := strings.ReplaceAll(s, enqueue.Redacted, "\x00")
				require.NotContains(t, strings.ToLower(collapsed), strings.ToLower(secret), "in %s", out)
			}
		}
	})
}

// jsonTexts returns every string, object key and number inside a decoded JSON value.
func jsonTexts(v any) []string {
	switch t := v.(type) {
	case map[string]any:
		var out []string
		for k, val := range t {
			out = append(append(out, k), jsonTexts(val)...)
		}
		return out
	case []any:
		var out []string
		for _, val := range t {
			out = append(out, jsonTexts(val)...)
		}
		return out
	case string:
		return []string{t}
	case json.Number:
		return []string{t.String()}
	}
	return nil
}
