package enqueue

import (
	"encoding/json"
	"net/url"
	"strings"
)

// Redacted replaces every secret wherever a job is shown or logged.
const Redacted = "[redacted]"

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
	if !strings.Contains(s, "@") || !strings.Contains(s, "://") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		// Not parseable: cut everything between "://" and "@" to be safe.
		i := strings.Index(s, "://")
		j := strings.LastIndex(s, "@")
		if i >= 0 && j > i {
			return s[:i+3] + Redacted + s[j:]
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
