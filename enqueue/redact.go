package enqueue

import (
	"encoding/json"
	"net/url"
	"regexp"
	"strings"

	"github.com/solvequeue/solvequeue/internal/redact"
)

// Redacted replaces every secret wherever a job is shown or logged: the module's one marker,
// which the worker's AnySolver client and HTTP side use too.
const Redacted = redact.Marker

// secretField reports whether a field name holds a secret: passwords, API or client keys, secrets.
// Solution tokens are the product, not secrets, and are not matched.
func secretField(name string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(name))
	switch {
	case strings.Contains(n, "password"), strings.Contains(n, "passwd"), strings.Contains(n, "secret"):
		return true
	case n == "clientkey", n == "apikey", n == "key", n == "accesskey", n == "privatekey", n == "authorization":
		return true
	}
	return false
}

// RedactValue returns a copy of v (a decoded JSON value) with secrets replaced: the value of any
// secret-named field (proxyPassword, clientKey, ...) and the password inside any URL string
// (the "proxy" URL form). v itself is not changed.
func RedactValue(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if secretField(k) {
				if s, ok := val.(string); ok && s == "" {
					out[k] = s
				} else {
					out[k] = Redacted
				}
				continue
			}
			out[k] = RedactValue(val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = RedactValue(val)
		}
		return out
	case string:
		return RedactURL(t)
	default:
		return v
	}
}

// RedactURL replaces the password of a URL-looking string ("http://user:pass@host:port") and
// returns any other string unchanged.
func RedactURL(s string) string {
	// The userinfo starts after "://", or after a leading "//" (a URL without a scheme, which
	// a proxy field passes validation with).
	start := strings.Index(s, "://") + len("://")
	if start < len("://") {
		if !strings.HasPrefix(s, "//") {
			return s
		}
		start = len("//")
	}
	if !strings.Contains(s, "@") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		// Not parseable: cut everything between "://" (or "//") and the last "@" to be safe.
		if j := strings.LastIndex(s, "@"); j > start {
			return s[:start] + Redacted + s[j:]
		}
		return s
	}
	if _, has := u.User.Password(); !has {
		return s
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return strings.Replace(u.String(), ":xxxxx@", ":"+Redacted+"@", 1)
}

// RedactJSON returns data with every secret redacted, for showing a stored payload or record.
// Data that is not JSON is returned as a short notice, never as the raw bytes.
func RedactJSON(data []byte) []byte {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return []byte(`"(not JSON; hidden)"`)
	}
	out, err := json.Marshal(RedactValue(v))
	if err != nil {
		return []byte(`"(unprintable; hidden)"`)
	}
	return out
}

// SecretValues returns the secrets inside v (a decoded JSON value such as a job's task): the
// values of secret-named fields (proxyPassword, ...) and the passwords inside URL strings (the
// "proxy" URL form). Use it with RedactText to clean text that may echo them.
func SecretValues(v any) []string {
	var out []string
	var walk func(v any)
	walk = func(v any) {
		switch t := v.(type) {
		case map[string]any:
			for k, val := range t {
				if s, ok := val.(string); ok && secretField(k) && s != "" {
					out = append(out, s)
					continue
				}
				walk(val)
			}
		case []any:
			for _, val := range t {
				walk(val)
			}
		case string:
			if u, err := url.Parse(t); err == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && pw != "" {
					out = append(out, pw, url.QueryEscape(pw))
				}
			}
		}
	}
	walk(v)
	return out
}

// urlUserinfo matches the userinfo of a URL inside free text, scheme://user:password@, the
// password running to the last '@' before a space or '/' (passwords hold '@' unescaped). The
// user may hold '@' too, as Go's URL parser reads it ("a://@:pw@" has user "@").
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s/:]*:)[^\s/]*@`)

// RedactText cuts secrets out of free text, such as an error description a provider wrote: the
// password of any URL in it, and every one of the given secrets (see SecretValues).
func RedactText(text string, secrets ...string) string {
	text = urlUserinfo.ReplaceAllString(text, "${1}"+Redacted+"@")
	for _, s := range secrets {
		if len(s) >= 3 { // a one- or two-character "secret" would shred the text, and hides nothing
			text = strings.ReplaceAll(text, s, Redacted)
		}
	}
	return text
}
