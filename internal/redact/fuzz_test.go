package redact_test

import (
	"bytes"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/redact"
)

// Fuzz targets for the redaction of what is shown (FuzzRedactJSON, FuzzRedactText,
// FuzzRedactJSONSecrets). Seed corpora live in testdata/fuzz/<target>; run one with, e.g.:
//
//	go test ./internal/redact -run '^$' -fuzz '^FuzzRedactText$' -fuzztime 30s

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
		out := redact.JSON(data)
		require.True(t, json.Valid(out), "RedactJSON gave invalid JSON: %s", out)
		var v any
		if json.Unmarshal(data, &v) != nil {
			require.Equal(t, `"(not JSON; hidden)"`, string(out), "text that is not JSON is never echoed")
			return
		}
		var shown any
		require.NoError(t, json.Unmarshal(out, &shown))
		for _, s := range redact.SecretValues(shown) {
			if s != redact.Marker && s != "%5Bredacted%5D" {
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
		out := redact.Text(text, secret)
		if len(secret) >= 3 && !strings.Contains(secret, "\x00") {
			collapsed := strings.ReplaceAll(out, redact.Marker, "\x00")
			require.NotContains(t, collapsed, secret, "in %q", out)
			if isASCII(secret) { // in another case, or escaped, it is gone too
				for _, form := range []string{strings.ToUpper(secret), strings.ToLower(secret), url.QueryEscape(secret), url.PathEscape(secret)} {
					collapsed := strings.ReplaceAll(redact.Text(text+" "+form, secret), redact.Marker, "\x00")
					require.NotContains(t, collapsed, form, "in %q", collapsed)
				}
			}
		}
		require.Equal(t, redact.Text(out), redact.Text(redact.Text(out)), "not idempotent")
		for _, word := range strings.Fields(redact.Text(text)) {
			for _, s := range redact.SecretValues(word) {
				// Text cuts the userinfo of a URL with a scheme; a scheme-less "//user:pw@" is
				// not one it treats as a URL (nor do proxies and Redis URLs come so).
				if u, err := url.Parse(word); err != nil || u.Scheme == "" {
					continue
				}
				if s != redact.Marker && s != "%5Bredacted%5D" && strings.Contains(word, "://") {
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
		out := redact.JSONSecrets(data, secret)
		if len(data) == 0 {
			require.Empty(t, out)
			return
		}
		if json.Valid(data) && redact.Text(string(data), secret) == string(data) {
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
				collapsed := strings.ReplaceAll(s, redact.Marker, "\x00")
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
