package redact_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/redact"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
	}{
		{"http://user:pass@10.0.0.1:8080", "http://user:[redacted]@10.0.0.1:8080"},
		{"socks5://user:s3cr3t@proxy.example:1080", "socks5://user:[redacted]@proxy.example:1080"},
		{"http://u:p%40ss@h:1/path", "http://u:[redacted]@h:1/path"},
		{"redis://:secret@127.0.0.1:6379/0", "redis://:[redacted]@127.0.0.1:6379/0"},
		{"rediss://app:secret@redis.example:6380/2", "rediss://app:[redacted]@redis.example:6380/2"},
		// An '@' inside the password: everything up to the last '@' is userinfo.
		{"socks5://user:p@ss@host:1080", "socks5://user:[redacted]@host:1080"},
		// Not parseable as a URL: everything between "://" and the last '@' goes.
		{"http://a b:c@d", "http://[redacted]@d"},
		// A Sentinel's own password rides in the query.
		{"redis-sentinel://:pw@s1:26379,s2?master=m&sentinel_password=s3nt1nel",
			"redis-sentinel://[redacted]@s1:26379,s2?master=m&sentinel_password=[redacted]"},
		{"redis-sentinel://s1?SENTINEL_PASSWORD=s3nt1nel&master=m#x", "redis-sentinel://s1?SENTINEL_PASSWORD=[redacted]&master=m#x"},
		// A user alone is a password to Redis and a token to a webhook.
		{"http://user@host:1", "http://[redacted]@host:1"},
		// Nothing to hide.
		{"http://host:1/?user=bob&page=2", "http://host:1/?user=bob&page=2"},
		{"https://shop.example/login?next=/a", "https://shop.example/login?next=/a"},
		{"mail me at someone@example.com", "mail me at someone@example.com"},
		{"03AGdBq24-token-text", "03AGdBq24-token-text"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, redact.URL(tt.in))
		})
	}
}

// TestRedactRedisURL: every form of REDIS_URL hides its password: with and without a user, a
// user alone (go-redis reads "redis://pw@" as the password), over TLS, Sentinel and Cluster, and a
// password in the query.
func TestRedactRedisURL(t *testing.T) {
	t.Parallel()
	const pw = "Secr3tPw"
	for _, raw := range []string{
		"redis://:" + pw + "@127.0.0.1:6379/0", "redis://app:" + pw + "@127.0.0.1:6379", "redis://" + pw + "@127.0.0.1:6379",
		"redis://" + pw + "@127.0.0.1", "rediss://" + pw + "@redis.example:6380/2", "rediss://app:" + pw + "@redis.example:6380",
		"redis-sentinel://" + pw + "@s1:26379,s2:26379?master=m", "redis-sentinel://:" + pw + "@s1:26379?master=m",
		"redis-cluster://" + pw + "@h1:7000,h2:7001", "redis-cluster://app:" + pw + "@h1:7000,h2:7001",
		"redis://127.0.0.1:6379/0?password=" + pw, "redis://127.0.0.1:6379?dial_timeout=1s&Password=" + pw + "&db=2",
		"redis-sentinel://s1?master=m&sentinel_password=" + pw, "redis://p%40" + pw + "@h:1",
	} {
		shown := redact.URL(raw)
		require.NotContains(t, shown, pw, raw)
		require.Contains(t, shown, redact.Marker, raw)
		err := redact.URLError(errors.New("parse "+raw+": failed"), raw)
		require.NotContains(t, err.Error(), pw, raw)
	}
}

// TestRedactURLQuery: a URL's query values named for secrets are hidden wherever the URL is shown
// (a callbackUrl or websiteURL in a payload, a callback's failure), the other parameters stay,
// and SecretValues lists them for Text to cut from any echo.
func TestRedactURLQuery(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"https://hooks.example/cb?token=T0k3nValue", "https://hooks.example/cb?token=[redacted]"},
		{"https://hooks.example/cb?id=7&api_key=K3yValue&x=1", "https://hooks.example/cb?id=7&api_key=[redacted]&x=1"},
		{"https://h.example/?key=a1b2c3", "https://h.example/?key=[redacted]"},
		{"https://h.example/?secret=a1b2c3#frag", "https://h.example/?secret=[redacted]#frag"},
		{"https://h.example/?password=a1b2c3", "https://h.example/?password=[redacted]"},
		{"https://h.example/?sig=a1b2c3&signature=d4e5", "https://h.example/?sig=[redacted]&signature=[redacted]"},
		{"https://h.example/?auth=a1b2c3&access_token=d4e5", "https://h.example/?auth=[redacted]&access_token=[redacted]"},
		{"https://h.example/?apiKey=a1&X-Amz-Signature=b2&client_secret=c3", "https://h.example/?apiKey=[redacted]&X-Amz-Signature=[redacted]&client_secret=[redacted]"},
		{"https://h.example/?Token=a1b2c3", "https://h.example/?Token=[redacted]"},
		{"https://bob:Pa55word@h.example/cb", "https://bob:[redacted]@h.example/cb"},
		{"https://Tok3nUser@h.example/cb", "https://[redacted]@h.example/cb"},
		{"https://shop.example/login?next=/a&lang=en", "https://shop.example/login?next=/a&lang=en"},
		{"https://shop.example/login?token=", "https://shop.example/login?token="},
	} {
		require.Equal(t, tc.want, redact.URL(tc.in), tc.in)
	}
	payload := []byte(`{"v":1,"callbackUrl":"https://hooks.example/cb?token=T0k3nValue&id=7",` +
		`"task":{"type":"RecaptchaV2Task","websiteURL":"https://u:Pa55word@shop.example/login?api_key=K3yValue","websiteKey":"k"}}`)
	shown := string(redact.JSON(payload))
	for _, secret := range []string{"T0k3nValue", "Pa55word", "K3yValue"} {
		require.NotContains(t, shown, secret)
	}
	require.Contains(t, shown, "id=7")
	var v any
	require.NoError(t, json.Unmarshal(payload, &v))
	text := redact.Text("POST failed for T0k3nValue (and K3yValue, Pa55word)", redact.SecretValues(v)...)
	for _, secret := range []string{"T0k3nValue", "Pa55word", "K3yValue"} {
		require.NotContains(t, text, secret)
	}
	require.Equal(t, `Post "https://hooks.example/cb?token=[redacted]&id=7": refused`,
		redact.Text(`Post "https://hooks.example/cb?token=T0k3nValue&id=7": refused`))
}

func TestRedactValue(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string // JSON
		want string // JSON
	}{
		{name: "proxyPassword",
			in:   `{"type":"RecaptchaV2Task","proxyLogin":"bob","proxyPassword":"hunter2"}`,
			want: `{"type":"RecaptchaV2Task","proxyLogin":"bob","proxyPassword":"[redacted]"}`},
		{name: "proxy URL",
			in:   `{"type":"RecaptchaV2Task","proxy":"http://bob:hunter2@10.0.0.1:3128"}`,
			want: `{"type":"RecaptchaV2Task","proxy":"http://bob:[redacted]@10.0.0.1:3128"}`},
		{name: "clientKey and apiKey, any spelling",
			in:   `{"clientKey":"sk-1","api_key":"sk-2","API-KEY":"sk-3","Authorization":"Basic x"}`,
			want: `{"clientKey":"[redacted]","api_key":"[redacted]","API-KEY":"[redacted]","Authorization":"[redacted]"}`},
		{name: "nested settings and lists",
			in:   `{"settings":{"provider":{"secret":"s","password":"p","list":[{"accessKey":"a"},"http://u:p@h:1"]}}}`,
			want: `{"settings":{"provider":{"secret":"[redacted]","password":"[redacted]","list":[{"accessKey":"[redacted]"},"http://u:[redacted]@h:1"]}}}`},
		{name: "a secret that is not a string is hidden too",
			in:   `{"proxyPassword":12345,"clientKey":{"v":"x"}}`,
			want: `{"proxyPassword":"[redacted]","clientKey":"[redacted]"}`},
		{name: "an empty secret stays empty (shows it was not set)",
			in:   `{"proxyPassword":""}`,
			want: `{"proxyPassword":""}`},
		{name: "solutions and site keys are the product, not secrets",
			in: `{"token":"03AGdBq24","gRecaptchaResponse":"03AGdBq25","userAgent":"Mozilla","websiteKey":"6Le-key",` +
				`"text":"x7k2","cookies":{"aws-waf-token":"t"},"taskId":"abc"}`,
			want: `{"token":"03AGdBq24","gRecaptchaResponse":"03AGdBq25","userAgent":"Mozilla","websiteKey":"6Le-key",` +
				`"text":"x7k2","cookies":{"aws-waf-token":"t"},"taskId":"abc"}`},
		{name: "scalars pass", in: `[1,true,null,"plain"]`, want: `[1,true,null,"plain"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var in any
			require.NoError(t, json.Unmarshal([]byte(tt.in), &in))
			var before any
			require.NoError(t, json.Unmarshal([]byte(tt.in), &before))

			out, err := json.Marshal(redact.Value(in))
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(out))
			require.Equal(t, before, in, "RedactValue must not change its input")
			require.JSONEq(t, tt.want, string(redact.JSON([]byte(tt.in))), "RedactJSON agrees with RedactValue")
		})
	}
}

func TestRedactJSONHidesWhatIsNotJSON(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`garbage proxyPassword=hunter2`, `{"proxyPassword":"hunter2"`, ``} {
		got := string(redact.JSON([]byte(raw)))
		require.NotContains(t, got, "hunter2")
		require.True(t, json.Valid([]byte(got)), "the notice is JSON: %s", got)
		require.Contains(t, got, "hidden")
	}
}

// TestRedactedJobLine is the promise for a whole job: the proxy password (field or URL)
// never shows, and everything else does.
func TestRedactedJobLine(t *testing.T) {
	t.Parallel()
	line := `{"id":"j1","settings":{"proxyPassword":"pw-in-settings"},"task":{"type":"RecaptchaV2Task",` +
		`"websiteURL":"https://a.example","websiteKey":"6Le","proxyType":"http","proxyAddress":"10.0.0.1","proxyPort":3128,` +
		`"proxyLogin":"bob","proxyPassword":"pw-in-field","fallbackProxy":"http://bob:pw-in-url@10.0.0.2:3128"}}`
	got := string(redact.JSON([]byte(line)))
	for _, secret := range []string{"pw-in-settings", "pw-in-field", "pw-in-url"} {
		require.NotContains(t, got, secret)
	}
	for _, kept := range []string{`"j1"`, `"6Le"`, `"bob"`, `3128`, `"https://a.example"`} {
		require.Contains(t, got, kept)
	}
}

// TestRedactTextCaseAndEscapes is the review's echo: a secret comes back in another case or
// escaped (percent, query, JSON, HTML, Go quoting), whole or character by character.
func TestRedactTextCaseAndEscapes(t *testing.T) {
	t.Parallel()
	const pw = "PROXYPW!SECRET42"
	tests := []struct {
		name, secret, text, want string
	}{
		{"as it is", pw, "proxy refused PROXYPW!SECRET42 here", "proxy refused [redacted] here"},
		{"another case, percent-encoded", pw, "proxy refused PrOxYpW%21sEcReT42", "proxy refused [redacted]"},
		{"lower hex digits", "pw*secret", "pw%2asecret and pw%2Asecret", "[redacted] and [redacted]"},
		{"every byte percent-encoded", pw, "x=%50%52%4f%58%59%50%57%21%53%45%43%52%45%54%34%32&y=1", "x=[redacted]&y=1"},
		{"a letter percent-encoded in the other case", pw, "%70roxypw!secret42", "[redacted]"},
		{"JSON escape", pw, `{"e":"PROXYPW\u0021SECRET42"}`, `{"e":"[redacted]"}`},
		{"JSON escape of a quote", `pa"ss!word`, `{"e":"pa\"ss!word"}`, `{"e":"[redacted]"}`},
		{"JSON escape of a slash", "pass/word", `said pass\/word`, `said [redacted]`},
		{"query escape of a space", "pass word!", "?p=pass+word%21&q", "?p=[redacted]&q"},
		{"HTML references", "pass<word>", "pass&lt;word&#62; and pass&#x3C;word&gt;", "[redacted] and [redacted]"},
		{"Go quoting", "pass\x01word", `"pass\x01word"`, `"[redacted]"`},
		{"a character outside the BMP as a JSON surrogate pair", "pw😀pw", `"pw\ud83d\ude00pw"`, `"[redacted]"`},
		{"Unicode case folding", "grüße-pw", "GRÜSSE GRÜẞE-PW GRÜßE-PW", "GRÜSSE [redacted] [redacted]"},
		{"every occurrence", "s3cret", "s3cret S3CRET s3cr%65t", "[redacted] [redacted] [redacted]"},
		{"short secrets are left alone", "ab", "abc ab AB", "abc ab AB"},
		{"nothing else is touched", pw, "mail me at someone@example.com: 100% done", "mail me at someone@example.com: 100% done"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, redact.Text(tt.text, tt.secret))
		})
	}
}

func TestRedactTextOddSecrets(t *testing.T) {
	t.Parallel()
	// Not UTF-8: still cut as it is and query-escaped.
	bad := "pw\xff\xfe-secret"
	require.Equal(t, "a [redacted] b [redacted]", redact.Text("a "+bad+" b "+url.QueryEscape(bad), bad))
	// Too long to match in every escaped form: as it is, query- or path-escaped, in any case.
	long := strings.Repeat("k! ", 400)
	require.Equal(t, "a [redacted] b [redacted] [redacted]",
		redact.Text("a "+strings.ToUpper(long)+" b "+url.QueryEscape(long)+" "+url.PathEscape(long), long))
	// Regular expression syntax in a secret is a literal.
	require.Equal(t, "x [redacted] y", redact.Text("x a.*b(c y", "a.*b(c"))
}

// TestRedactTextCutSecret: a text cut short upstream that ends with a secret's first bytes.
func TestRedactTextCutSecret(t *testing.T) {
	t.Parallel()
	const key = "sk-live-0123456789abcdef"
	for _, tt := range []struct{ text, want string }{
		{strings.Repeat("A", 20) + key[:10] + "…", strings.Repeat("A", 20) + "[redacted]…"},
		{"bad key " + key[:5], "bad key [redacted]"},
		{"bad key " + strings.ToUpper(key[:7]) + "...", "bad key [redacted]..."},
		{"ends with sk", "ends with sk"}, // two bytes say nothing
		{"bad key " + key[:10] + " and more", "bad key " + key[:10] + " and more"},
	} {
		require.Equal(t, tt.want, redact.Text(tt.text, key), tt.text)
	}
}

// TestRedactAndTruncate is the review's case: a description of 500 bytes and then the key,
// bounded at 512 bytes, must not keep the key's first bytes.
func TestRedactAndTruncate(t *testing.T) {
	t.Parallel()
	const key = "sk-live-0123456789abcdefFEDCBA9876543210"
	text := strings.Repeat("A", 500) + key
	got := redact.AndTruncate(text, 512, key)
	require.Equal(t, strings.Repeat("A", 500)+redact.Marker, got)
	for n := 3; n <= len(key); n++ {
		require.NotContains(t, got, key[:n])
	}
	// Cutting first, as before, kept 12 bytes of the key.
	require.Contains(t, redact.Text(text[:512], ""), key[:12])

	for _, tt := range []struct {
		name  string
		text  string
		limit int
	}{
		{"longer text", strings.Repeat("B", 600) + key + strings.Repeat("C", 600), 512},
		{"multi-byte runes", strings.Repeat("é", 300), 11},
		{"a limit smaller than the mark", strings.Repeat("é", 10), 2},
		{"zero", "abc", 0},
	} {
		got := redact.AndTruncate(tt.text, tt.limit, key)
		require.LessOrEqual(t, len(got), tt.limit, tt.name)
		require.True(t, utf8.ValidString(got), tt.name)
		require.NotContains(t, got, key[:3], tt.name)
	}
	require.Equal(t, "short [redacted]", redact.AndTruncate("short "+key, 512, key))
	require.Equal(t, "éé…", redact.AndTruncate(strings.Repeat("é", 10), 7))
}

// TestRedactJSONSecrets: a hostile solution that carries the API key loses it; a solution without
// a secret is kept byte for byte.
func TestRedactJSONSecrets(t *testing.T) {
	t.Parallel()
	const key = "sk-live-7f3a9c0d2e"
	tests := []struct {
		name, in, want string
	}{
		{"the key in a field", `{"token":"03AGdBq24","clientKey":"` + key + `"}`, `{"token":"03AGdBq24","clientKey":"[redacted]"}`},
		{"the key inside text", `{"token":"tok-` + key + `-en"}`, `{"token":"tok-[redacted]-en"}`},
		{"the key escaped", `{"t":"sk\u002dlive-7f3a9c0d2e"}`, `{"t":"[redacted]"}`},
		{"the key in another case", `{"t":"SK-LIVE-7F3A9C0D2E"}`, `{"t":"[redacted]"}`},
		{"the key as an object key, nested", `{"a":[{"` + key + `":1}],"n":1.50}`, `{"a":[{"[redacted]":1}],"n":1.50}`},
		{"a URL password", `{"via":"http://u:pw@h:1"}`, `{"via":"http://u:[redacted]@h:1"}`},
		{"the key as a string value", `"` + key + `"`, `"[redacted]"`},
		{"the secret as a number", `{"n":1234567890}`, `{"n":"[redacted]"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := redact.JSONSecrets(json.RawMessage(tt.in), key, "1234567890")
			require.JSONEq(t, tt.want, string(got))
			require.NotContains(t, strings.ToLower(string(got)), key)
		})
	}
	for _, raw := range []string{`{"token":"03AGdBq24",  "b":[1, 2.50, 1e3]}`, `null`, ``} {
		require.Equal(t, raw, string(redact.JSONSecrets(json.RawMessage(raw), key)), "unchanged byte for byte")
	}
	got := redact.JSONSecrets(json.RawMessage(`not json `+key), key)
	require.JSONEq(t, `"not json [redacted]"`, string(got))
}

// BenchmarkRedactJSONSecretsManyValues redacts a JSON array of 300 short strings and numbers with
// one long secret: the secret's pattern is compiled once per call, not once per value (it was
// compiled per value, and a fuzz input of a few thousand numbers then took seconds: the fuzz
// engine's worker stalled and CI's fuzz phase failed with "context deadline exceeded").
func BenchmarkRedactJSONSecretsManyValues(b *testing.B) {
	secret := strings.Repeat("aé", 200)
	var sb strings.Builder
	sb.WriteString("[")
	for i := range 300 {
		fmt.Fprintf(&sb, `"xx%s",%d,`, secret[:20], i)
	}
	sb.WriteString(`"` + secret + `"]`)
	data := []byte(sb.String())
	for b.Loop() {
		redact.JSONSecrets(data, secret)
	}
}

func TestRedactURLError(t *testing.T) {
	t.Parallel()
	raw := "redis://user:ab/cdS3CRET@127.0.0.1:1/0"
	_, perr := url.Parse(raw)
	require.Error(t, perr)
	err := redact.URLError(perr, raw)
	require.Equal(t, `parse "redis://[redacted]@127.0.0.1:1/0": invalid port "[redacted]" after host`, err.Error())
	var uerr *url.Error
	require.ErrorAs(t, err, &uerr, "the original error is still there to inspect")

	sentinel := errors.New("dial failed")
	wrapped := redact.URLError(errors.Join(sentinel, errors.New("AUTH s3cret refused; URL redis://:S3CRET@h")), "redis://:s3cret@h")
	require.ErrorIs(t, wrapped, sentinel)
	require.NotContains(t, strings.ToLower(wrapped.Error()), "s3cret")

	// A password escaped in the URL is cut in its decoded form too.
	require.NotContains(t, redact.URLError(errors.New(`auth "p@ss w"`), "redis://u:p%40ss%20w@h:1").Error(), "p@ss w")
	// Quoted fragments that are not the password stay.
	require.Equal(t, `bad db "notadb"`, redact.URLError(errors.New(`bad db "notadb"`), "redis://u:pw@h:1/notadb").Error())
	require.NoError(t, redact.URLError(nil, raw))
	require.Equal(t, "x", redact.URLError(errors.New("x"), "redis://h:1").Error())
}
