package enqueue_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

// website is a task of type typ with a valid websiteURL and websiteKey, plus extra fields.
func website(typ string, extra ...any) map[string]any {
	task := map[string]any{"type": typ, "websiteURL": "https://shop.example/login", "websiteKey": "6Le-site-key"}
	for i := 0; i+1 < len(extra); i += 2 {
		task[extra[i].(string)] = extra[i+1]
	}
	return task
}

// without returns a copy of task without the named fields.
func without(task map[string]any, fields ...string) map[string]any {
	out := make(map[string]any, len(task))
	for k, v := range task {
		out[k] = v
	}
	for _, f := range fields {
		delete(out, f)
	}
	return out
}

func intPtr(n int) *int { return &n }

func TestJobValidate(t *testing.T) {
	t.Parallel()
	const png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB"
	tests := []struct {
		name      string
		job       enqueue.Job
		wantField string // "" means valid
		wantText  string // part of the problem, when wantField is set
	}{
		// Every family that needs websiteURL and websiteKey, in any case.
		{name: "RecaptchaV2TaskProxyless ok", job: enqueue.Job{Task: website("RecaptchaV2TaskProxyless")}},
		{name: "ReCaptchaV2Token ok", job: enqueue.Job{Task: website("ReCaptchaV2Token")}},
		{name: "ReCaptchaV3EnterpriseToken ok", job: enqueue.Job{Task: website("ReCaptchaV3EnterpriseToken")}},
		{name: "HCaptchaTaskProxyless ok", job: enqueue.Job{Task: website("HCaptchaTaskProxyless")}},
		{name: "TurnstileToken ok", job: enqueue.Job{Task: website("TurnstileToken")}},
		{name: "PopularCaptchaToken ok", job: enqueue.Job{Task: website("PopularCaptchaToken")}},
		{name: "recaptcha lower case needs websiteURL", job: enqueue.Job{Task: without(website("recaptchav2task"), "websiteURL")},
			wantField: "task.websiteURL", wantText: "is required for recaptchav2task"},
		{name: "RECAPTCHA upper case needs websiteKey", job: enqueue.Job{Task: without(website("RECAPTCHAV2TASKPROXYLESS"), "websiteKey")},
			wantField: "task.websiteKey", wantText: "is required for RECAPTCHAV2TASKPROXYLESS"},
		{name: "hCaptcha needs websiteKey", job: enqueue.Job{Task: without(website("HCaptchaTaskProxyless"), "websiteKey")},
			wantField: "task.websiteKey"},
		{name: "Turnstile needs websiteURL", job: enqueue.Job{Task: without(website("TurnstileTaskProxyless"), "websiteURL")},
			wantField: "task.websiteURL"},
		{name: "PopularCaptcha needs websiteKey", job: enqueue.Job{Task: without(website("popularcaptchatoken"), "websiteKey")},
			wantField: "task.websiteKey"},
		{name: "blank websiteKey", job: enqueue.Job{Task: website("TurnstileToken", "websiteKey", "  ")},
			wantField: "task.websiteKey", wantText: "non-empty string"},
		{name: "websiteKey not a string", job: enqueue.Job{Task: website("TurnstileToken", "websiteKey", json.Number("42"))},
			wantField: "task.websiteKey"},
		{name: "websiteURL without scheme", job: enqueue.Job{Task: website("RecaptchaV2TaskProxyless", "websiteURL", "shop.example/login")},
			wantField: "task.websiteURL", wantText: "full http:// or https:// URL"},
		{name: "websiteURL ftp", job: enqueue.Job{Task: website("RecaptchaV2TaskProxyless", "websiteURL", "ftp://shop.example/")},
			wantField: "task.websiteURL"},
		{name: "websiteURL http ok", job: enqueue.Job{Task: website("RecaptchaV2TaskProxyless", "websiteURL", "http://shop.example:8080/a?b=c")}},

		// ImageToTextTask needs a base64 body.
		{name: "image ok", job: enqueue.Job{Task: map[string]any{"type": "ImageToTextTask", "body": png}}},
		{name: "image any case ok", job: enqueue.Job{Task: map[string]any{"type": "imagetotexttask", "body": png + "=="}}},
		{name: "image data URL ok", job: enqueue.Job{Task: map[string]any{"type": "ImageToTextTask", "body": "data:image/png;base64," + png}}},
		{name: "image URL-safe base64 ok", job: enqueue.Job{Task: map[string]any{"type": "ImageToTextTask", "body": "ab-_cd"}}},
		{name: "image without body", job: enqueue.Job{Task: map[string]any{"type": "ImageToTextTask"}},
			wantField: "task.body", wantText: "is required for ImageToTextTask"},
		{name: "image body not base64", job: enqueue.Job{Task: map[string]any{"type": "ImageToTextTask", "body": "not base64!"}},
			wantField: "task.body", wantText: "base64"},
		{name: "image needs no websiteURL", job: enqueue.Job{Task: map[string]any{"type": "ImageToTextTask", "body": png}}},

		// Unknown types pass through for AnySolver to judge.
		{name: "unknown type passes", job: enqueue.Job{Task: map[string]any{"type": "SomeNewAnySolverToken"}}},
		{name: "AWSWafToken passes", job: enqueue.Job{Task: map[string]any{"type": "AWSWafToken", "anything": true}}},

		// The task itself.
		{name: "no task", job: enqueue.Job{}, wantField: "task", wantText: "is required"},
		{name: "no type", job: enqueue.Job{Task: map[string]any{"websiteURL": "https://a.example"}}, wantField: "task.type"},
		{name: "blank type", job: enqueue.Job{Task: map[string]any{"type": " "}}, wantField: "task.type"},
		{name: "type not a string", job: enqueue.Job{Task: map[string]any{"type": json.Number("7")}}, wantField: "task.type"},

		// Proxies: the fields, or one URL.
		{name: "proxy fields ok", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "http", "proxyAddress", "10.0.0.1",
			"proxyPort", json.Number("8080"), "proxyLogin", "u", "proxyPassword", "p")}},
		{name: "proxy port as string ok", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "SOCKS5", "proxyAddress", "10.0.0.1", "proxyPort", "1080")}},
		{name: "proxy port as float ok", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "https", "proxyAddress", "10.0.0.1", "proxyPort", 443.0)}},
		{name: "proxy type unknown", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "ftp", "proxyAddress", "10.0.0.1", "proxyPort", 21)},
			wantField: "task.proxyType", wantText: "http, https, socks4 or socks5"},
		{name: "proxy type missing", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyAddress", "10.0.0.1", "proxyPort", 8080)},
			wantField: "task.proxyType"},
		{name: "proxy address missing", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "http", "proxyPort", 8080)},
			wantField: "task.proxyAddress"},
		{name: "proxy port zero", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "http", "proxyAddress", "10.0.0.1", "proxyPort", json.Number("0"))},
			wantField: "task.proxyPort", wantText: "1-65535"},
		{name: "proxy port too big", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "http", "proxyAddress", "10.0.0.1", "proxyPort", "65536")},
			wantField: "task.proxyPort"},
		{name: "proxy port missing", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxyType", "http", "proxyAddress", "10.0.0.1")},
			wantField: "task.proxyPort"},
		{name: "proxy URL ok", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxy", "http://user:pass@10.0.0.1:8080")}},
		{name: "proxy URL socks5 ok", job: enqueue.Job{Task: website("HCaptchaTask", "proxy", "socks5://10.0.0.1:1080")}},
		{name: "proxy URL without port", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxy", "http://10.0.0.1")},
			wantField: "task.proxy", wantText: "scheme, host and port"},
		{name: "proxy URL without scheme", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxy", "user:pass@10.0.0.1:8080")},
			wantField: "task.proxy"},
		{name: "proxy URL empty", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxy", "")}, wantField: "task.proxy"},
		{name: "proxy URL not a string", job: enqueue.Job{Task: website("RecaptchaV2Task", "proxy", map[string]any{"host": "x"})},
			wantField: "task.proxy"},
		{name: "proxy checked on unknown types too", job: enqueue.Job{Task: map[string]any{"type": "NewThing", "proxy": "nonsense"}},
			wantField: "task.proxy"},

		// Queue names.
		{name: "queue ok", job: enqueue.Job{Queue: "critical", Task: website("TurnstileToken")}},
		{name: "queue with punctuation ok", job: enqueue.Job{Queue: "team-a.low:2_x", Task: website("TurnstileToken")}},
		{name: "queue with space", job: enqueue.Job{Queue: "my queue", Task: website("TurnstileToken")},
			wantField: "queue", wantText: "1-64 characters"},
		{name: "queue with slash", job: enqueue.Job{Queue: "a/b", Task: website("TurnstileToken")}, wantField: "queue"},
		{name: "queue too long", job: enqueue.Job{Queue: strings.Repeat("q", 65), Task: website("TurnstileToken")}, wantField: "queue"},

		// Callback URLs.
		{name: "callbackUrl https ok", job: enqueue.Job{CallbackURL: "https://hooks.example/solved?x=1", Task: website("TurnstileToken")}},
		{name: "callbackUrl http with port ok", job: enqueue.Job{CallbackURL: "http://10.0.0.5:9000/cb", Task: website("TurnstileToken")}},
		{name: "callbackUrl without scheme", job: enqueue.Job{CallbackURL: "hooks.example/solved", Task: website("TurnstileToken")},
			wantField: "callbackUrl", wantText: "full http:// or https:// URL"},
		{name: "callbackUrl ftp", job: enqueue.Job{CallbackURL: "ftp://hooks.example/", Task: website("TurnstileToken")}, wantField: "callbackUrl"},
		{name: "callbackUrl without host", job: enqueue.Job{CallbackURL: "https:///path", Task: website("TurnstileToken")}, wantField: "callbackUrl"},
		{name: "callbackUrl too long", job: enqueue.Job{CallbackURL: "https://hooks.example/" + strings.Repeat("a", 2048), Task: website("TurnstileToken")},
			wantField: "callbackUrl", wantText: "at most 2048"},

		// IDs.
		{name: "id ok", job: enqueue.Job{ID: "order-42/2026", Task: website("TurnstileToken")}},
		{name: "id of 200 characters ok", job: enqueue.Job{ID: strings.Repeat("i", 200), Task: website("TurnstileToken")}},
		{name: "id too long", job: enqueue.Job{ID: strings.Repeat("i", 201), Task: website("TurnstileToken")},
			wantField: "id", wantText: "at most 200"},
		{name: "id with space", job: enqueue.Job{ID: "order 42", Task: website("TurnstileToken")}, wantField: "id", wantText: "white space"},
		{name: "id with newline", job: enqueue.Job{ID: "order\n42", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with control", job: enqueue.Job{ID: "order\x0042", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a right-to-left override", job: enqueue.Job{ID: "invoice-\u202Egpj.exe", Task: website("TurnstileToken")},
			wantField: "id", wantText: "U+202E"},
		{name: "id with a bidi isolate", job: enqueue.Job{ID: "a\u2067b\u2069", Task: website("TurnstileToken")}, wantField: "id", wantText: "not printable"},
		{name: "id with a left-to-right mark", job: enqueue.Job{ID: "a\u200Eb", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a zero-width space", job: enqueue.Job{ID: "a\u200Bb", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a zero-width joiner", job: enqueue.Job{ID: "a\u200Db", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a byte order mark", job: enqueue.Job{ID: "\uFEFFid", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a soft hyphen", job: enqueue.Job{ID: "a\u00ADb", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a private-use character", job: enqueue.Job{ID: "a\uE000b", Task: website("TurnstileToken")}, wantField: "id"},
		{name: "id with a no-break space", job: enqueue.Job{ID: "a\u00A0b", Task: website("TurnstileToken")}, wantField: "id", wantText: "white space"},
		{name: "id not UTF-8", job: enqueue.Job{ID: "a\xffb", Task: website("TurnstileToken")}, wantField: "id", wantText: "UTF-8"},
		{name: "id in other scripts ok", job: enqueue.Job{ID: "заказ-42_注文·✓", Task: website("TurnstileToken")}},

		// Deadlines.
		{name: "deadline RFC 3339 ok", job: enqueue.Job{Deadline: "2030-01-02T15:04:05Z", Task: website("TurnstileToken")}},
		{name: "deadline RFC 3339 with offset ok", job: enqueue.Job{Deadline: "2030-01-02T15:04:05.5+02:00", Task: website("TurnstileToken")}},
		{name: "deadline duration ok", job: enqueue.Job{Deadline: "10m", Task: website("TurnstileToken")}},
		{name: "deadline garbage", job: enqueue.Job{Deadline: "tomorrow", Task: website("TurnstileToken")},
			wantField: "deadline", wantText: "neither an RFC 3339 time"},
		{name: "deadline date only", job: enqueue.Job{Deadline: "2030-01-02", Task: website("TurnstileToken")}, wantField: "deadline"},
		{name: "deadline negative", job: enqueue.Job{Deadline: "-5m", Task: website("TurnstileToken")}, wantField: "deadline", wantText: "positive"},
		{name: "deadline zero", job: enqueue.Job{Deadline: "0s", Task: website("TurnstileToken")}, wantField: "deadline"},

		// Retry budgets.
		{name: "providers ok", job: enqueue.Job{Providers: []string{"CapSolver", "CapMonster"}, Task: website("TurnstileToken")}},
		{name: "provider and providers", job: enqueue.Job{Provider: "CapSolver", Providers: []string{"CapMonster"}, Task: website("TurnstileToken")},
			wantField: "providers", wantText: "not both"},
		{name: "provider listed twice", job: enqueue.Job{Providers: []string{"CapSolver", "capsolver"}, Task: website("TurnstileToken")},
			wantField: "providers[1]", wantText: "listed twice"},
		{name: "empty provider", job: enqueue.Job{Providers: []string{"CapSolver", " "}, Task: website("TurnstileToken")},
			wantField: "providers[1]", wantText: "want a provider name"},
		{name: "provider ok", job: enqueue.Job{Provider: "CapSolver", Task: website("TurnstileToken")}},
		{name: "provider of a megabyte", job: enqueue.Job{Provider: strings.Repeat("P", 1<<20), Task: website("TurnstileToken")},
			wantField: "provider", wantText: "1-64 printable characters"},
		{name: "provider of 65 bytes", job: enqueue.Job{Provider: strings.Repeat("P", 65), Task: website("TurnstileToken")}, wantField: "provider"},
		{name: "provider with a newline", job: enqueue.Job{Provider: "Cap\nSolver", Task: website("TurnstileToken")}, wantField: "provider"},
		{name: "provider with a right-to-left override", job: enqueue.Job{Provider: "Cap\u202ESolver", Task: website("TurnstileToken")}, wantField: "provider"},
		{name: "provider with a bidi isolate", job: enqueue.Job{Provider: "a\u2067b\u2069", Task: website("TurnstileToken")}, wantField: "provider"},
		{name: "provider blank", job: enqueue.Job{Provider: " ", Task: website("TurnstileToken")}, wantField: "provider"},
		{name: "provider not UTF-8", job: enqueue.Job{Provider: "a\xffb", Task: website("TurnstileToken")}, wantField: "provider"},
		{name: "providers entry not UTF-8", job: enqueue.Job{Providers: []string{"a\xffb"}, Task: website("TurnstileToken")}, wantField: "providers[0]"},
		{name: "maxRetries 0 ok", job: enqueue.Job{MaxRetries: intPtr(0), Task: website("TurnstileToken")}},
		{name: "maxRetries limit ok", job: enqueue.Job{MaxRetries: intPtr(enqueue.MaxRetriesLimit), Task: website("TurnstileToken")}},
		{name: "maxRetries negative", job: enqueue.Job{MaxRetries: intPtr(-1), Task: website("TurnstileToken")},
			wantField: "maxRetries", wantText: "between 0 and 100"},
		{name: "maxRetries too big", job: enqueue.Job{MaxRetries: intPtr(enqueue.MaxRetriesLimit + 1), Task: website("TurnstileToken")},
			wantField: "maxRetries"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.job.Validate()
			if tt.wantField == "" {
				require.NoError(t, err)
				return
			}
			var verr *enqueue.ValidationError
			require.True(t, errors.As(err, &verr), "want a *ValidationError, got %T: %v", err, err)
			require.Equal(t, tt.wantField, verr.Field, "error: %v", err)
			require.True(t, strings.HasPrefix(err.Error(), tt.wantField+": "), "the message starts with the field: %q", err)
			require.Contains(t, verr.Problem, tt.wantText)
			require.Less(t, len(err.Error()), 512, "the message quotes a bounded part of what was sent")
		})
	}
}

func TestParseDeadline(t *testing.T) {
	t.Parallel()
	submitted := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	tests := []struct {
		name     string
		deadline string
		want     time.Time
		wantErr  bool
	}{
		{name: "empty is no deadline", deadline: "", want: time.Time{}},
		{name: "duration counts from submission", deadline: "90s", want: submitted.Add(90 * time.Second)},
		{name: "compound duration", deadline: "1h30m", want: submitted.Add(90 * time.Minute)},
		{name: "RFC 3339 is absolute", deadline: "2026-03-04T06:00:00Z", want: time.Date(2026, 3, 4, 6, 0, 0, 0, time.UTC)},
		{name: "RFC 3339 in the past is kept", deadline: "2020-01-01T00:00:00Z", want: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "garbage", deadline: "soon", wantErr: true},
		{name: "negative", deadline: "-1s", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := enqueue.ParseDeadline(tt.deadline, submitted)
			if tt.wantErr {
				var verr *enqueue.ValidationError
				require.ErrorAs(t, err, &verr)
				require.Equal(t, "deadline", verr.Field)
				return
			}
			require.NoError(t, err)
			require.True(t, tt.want.Equal(got), "want %s, got %s", tt.want, got)
		})
	}
}

// TestValidateCapsTheJobSize: the library refuses a job over MaxJobBytes as the CLI refuses a
// line over MaxLineBytes, before anything reaches Redis.
func TestValidateCapsTheJobSize(t *testing.T) {
	t.Parallel()
	image := func(n int) map[string]any {
		return map[string]any{"type": "ImageToTextTask", "body": strings.Repeat("A", n)}
	}
	type blob struct{ Data string }
	tests := []struct {
		name string
		job  enqueue.Job
		ok   bool
	}{
		{"a body well under the cap", enqueue.Job{Task: image(enqueue.MaxJobBytes - 1024)}, true},
		{"a body over the cap", enqueue.Job{Task: image(enqueue.MaxJobBytes)}, false},
		{"many fields over the cap", enqueue.Job{Task: func() map[string]any {
			m := website("RecaptchaV2TaskProxyless")
			for i := range 17 {
				m[fmt.Sprint("f", i)] = strings.Repeat("x", 1<<20)
			}
			return m
		}()}, false},
		{"settings over the cap", enqueue.Job{Task: website("RecaptchaV2TaskProxyless"),
			Settings: map[string]any{"list": []any{strings.Repeat("x", 9<<20), strings.Repeat("y", 9<<20)}}}, false},
		{"a Go value of the caller's own type", enqueue.Job{Task: func() map[string]any {
			m := website("RecaptchaV2TaskProxyless")
			m["extra"] = blob{Data: strings.Repeat("z", enqueue.MaxJobBytes)}
			return m
		}()}, false},
		{"typed string slices", enqueue.Job{Task: func() map[string]any {
			m := website("RecaptchaV2TaskProxyless")
			m["extra"] = []string{strings.Repeat("z", enqueue.MaxJobBytes)}
			return m
		}()}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.job.Validate()
			if tt.ok {
				require.NoError(t, err)
				return
			}
			var verr *enqueue.ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, "(job)", verr.Field)
			require.Contains(t, verr.Problem, "MaxJobBytes")
		})
	}
}

// TestJobSizeAgreesWithTheCLI: a line the CLI reads (at most MaxLineBytes) is never refused by
// the library's cap.
func TestJobSizeAgreesWithTheCLI(t *testing.T) {
	t.Parallel()
	prefix := `{"id":"big","settings":{"a":[1,2.5,true,null]},"task":{"type":"ImageToTextTask","body":"`
	suffix := `"}}`
	line := prefix + strings.Repeat("QUJD", (enqueue.MaxLineBytes-len(prefix)-len(suffix))/4) + suffix
	require.LessOrEqual(t, len(line), enqueue.MaxLineBytes)
	job, err := enqueue.ParseJob([]byte(line))
	require.NoError(t, err)
	require.NoError(t, job.Validate())
}
