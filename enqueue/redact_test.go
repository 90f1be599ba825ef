package enqueue_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
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
		// Nothing to hide.
		{"http://user@host:1", "http://user@host:1"},
		{"https://shop.example/login?next=/a", "https://shop.example/login?next=/a"},
		{"mail me at someone@example.com", "mail me at someone@example.com"},
		{"03AGdBq24-token-text", "03AGdBq24-token-text"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, enqueue.RedactURL(tt.in))
		})
	}
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

			out, err := json.Marshal(enqueue.RedactValue(in))
			require.NoError(t, err)
			require.JSONEq(t, tt.want, string(out))
			require.Equal(t, before, in, "RedactValue must not change its input")
			require.JSONEq(t, tt.want, string(enqueue.RedactJSON([]byte(tt.in))), "RedactJSON agrees with RedactValue")
		})
	}
}

func TestRedactJSONHidesWhatIsNotJSON(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{`garbage proxyPassword=hunter2`, `{"proxyPassword":"hunter2"`, ``} {
		got := string(enqueue.RedactJSON([]byte(raw)))
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
	got := string(enqueue.RedactJSON([]byte(line)))
	for _, secret := range []string{"pw-in-settings", "pw-in-field", "pw-in-url"} {
		require.NotContains(t, got, secret)
	}
	for _, kept := range []string{`"j1"`, `"6Le"`, `"bob"`, `3128`, `"https://a.example"`} {
		require.Contains(t, got, kept)
	}
}
