package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

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

// Value returns a copy of v (a decoded JSON value) with secrets replaced: the value of any
// secret-named field (proxyPassword, clientKey, ...) and the password inside any URL string
// (the "proxy" URL form). v itself is not changed.
func Value(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			if secretField(k) {
				if s, ok := val.(string); ok && s == "" {
					out[k] = s
				} else {
					out[k] = Marker
				}
				continue
			}
			out[k] = Value(val)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = Value(val)
		}
		return out
	case string:
		return URL(t)
	default:
		return v
	}
}

// URL hides the secrets of a URL-looking string and returns any other string unchanged: the
// password of its userinfo ("http://user:pass@host"), a userinfo that is a user alone (Redis
// reads "redis://secret@host" as a password, and a webhook's "https://token@host" is one), and
// the values of query parameters named for secrets (see SecretParam: ?token=, ?api_key=,
// ?password=, ?sig=, the Sentinels' sentinel_password ...). The URL a job carries keeps its
// secrets: this is only for what is shown or logged.
func URL(s string) string {
	return redactQuery(redactUserinfo(s))
}

// SentinelPasswordParam is the redis-sentinel:// URL's query parameter that carries the Sentinels'
// own password (internal/redisconn reads it): URL and URLError hide its value.
const SentinelPasswordParam = "sentinel_password"

// SecretParam reports whether a URL query parameter named name carries a secret: a token, key,
// secret, password, signature or credential in the usual spellings (token, api_key, apiKey, key,
// secret, client_secret, password, sentinel_password, sig, signature, X-Amz-Signature, auth,
// access_token, ...), in any case, '_' and '-' ignored.
func SecretParam(name string) bool {
	n := strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(name))
	switch n {
	case "key", "sig", "auth", "pass", "pwd", "passwd", "code", "session", "sessionid", "credential", "xamzcredential", "xamzsecuritytoken":
		return true
	}
	for _, suffix := range []string{"token", "secret", "password", "signature", "apikey", "accesskey", "privatekey", "clientkey", "authorization"} {
		if strings.HasSuffix(n, suffix) {
			return true
		}
	}
	return false
}

// queryParam is one name=value pair of a URL query (or of a query-like piece of free text),
// with the '?', '&' or ';' before it.
var queryParam = regexp.MustCompile(`([?&;])([^=&#;?\s"'<>]+)=([^&#;\s"'<>]*)`)

// redactQuery replaces the value of every secret query parameter (SecretParam) in s.
func redactQuery(s string) string {
	if !strings.ContainsAny(s, "?&;") {
		return s
	}
	return queryParam.ReplaceAllStringFunc(s, func(m string) string {
		sub := queryParam.FindStringSubmatch(m)
		name := sub[2]
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if !SecretParam(name) || sub[3] == "" {
			return m
		}
		return sub[1] + sub[2] + "=" + Marker
	})
}

// secretParamValues returns the values of rawURL's secret parameters, as written and unescaped.
func secretParamValues(rawURL string) []string {
	var vals []string
	for _, sub := range queryParam.FindAllStringSubmatch(rawURL, -1) {
		name, v := sub[2], sub[3]
		if dec, err := url.QueryUnescape(name); err == nil {
			name = dec
		}
		if v == "" || !SecretParam(name) {
			continue
		}
		vals = append(vals, v)
		if dec, err := url.QueryUnescape(v); err == nil && dec != v {
			vals = append(vals, dec)
		}
	}
	return vals
}

func redactUserinfo(s string) string {
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
			return s[:start] + Marker + s[j:]
		}
		return s
	}
	if _, has := u.User.Password(); !has {
		if u.User.Username() == "" {
			return s
		}
		// A user alone: Redis reads it as the password, a webhook as its token.
		j := strings.LastIndex(s, "@")
		return s[:start] + Marker + s[j:]
	}
	u.User = url.UserPassword(u.User.Username(), "xxxxx")
	return strings.Replace(u.String(), ":xxxxx@", ":"+Marker+"@", 1)
}

// URLError returns err (about rawURL, e.g. from parsing it) with the URL's password cut
// out of its text, for a message a person reads: rawURL shows as URL shows it, the
// password in any case or escaped form is cut, and a quoted fragment of the error that comes from
// the URL's user and password (url.Parse's `invalid port ":ab" after host` for a password holding
// '/') reads [redacted]. errors.Is and errors.As still see err. A nil err stays nil.
func URLError(err error, rawURL string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	shown := URL(rawURL)
	quoted := strings.Trim(strconv.Quote(rawURL), `"`)
	msg = strings.ReplaceAll(strings.ReplaceAll(msg, rawURL, shown), quoted, strings.Trim(strconv.Quote(shown), `"`))
	if params := secretParamValues(rawURL); len(params) > 0 {
		msg = Text(msg, params...)
	}
	userinfo := urlUserinfoOf(rawURL)
	if userinfo == "" {
		return &redactedURLError{msg: msg, err: err}
	}
	secrets := []string{userinfo}
	if _, pw, ok := strings.Cut(userinfo, ":"); ok {
		secrets = append(secrets, pw)
		if dec, derr := url.PathUnescape(pw); derr == nil && dec != pw {
			secrets = append(secrets, dec)
		}
	}
	msg = Text(msg, secrets...)
	msg = quotedFragment.ReplaceAllStringFunc(msg, func(q string) string {
		if frag := q[1 : len(q)-1]; frag != "" && frag != Marker && strings.Contains(userinfo, frag) {
			return `"` + Marker + `"`
		}
		return q
	})
	return &redactedURLError{msg: msg, err: err}
}

// quotedFragment is a double-quoted piece of an error message.
var quotedFragment = regexp.MustCompile(`"[^"\s]*"`)

// urlUserinfoOf returns what stands between a URL's "://" and its last '@' (its user and
// password, however malformed), or "" when there is none.
func urlUserinfoOf(rawURL string) string {
	start := strings.Index(rawURL, "://")
	if start < 0 {
		return ""
	}
	start += len("://")
	end := strings.LastIndex(rawURL, "@")
	if end <= start {
		return ""
	}
	return rawURL[start:end]
}

// redactedURLError is an error whose text had a URL's password cut out; it unwraps to the
// original.
type redactedURLError struct {
	msg string
	err error
}

func (e *redactedURLError) Error() string { return e.msg }
func (e *redactedURLError) Unwrap() error { return e.err }

// JSON returns data with every secret redacted, for showing a stored payload or record.
// Data that is not JSON is returned as a short notice, never as the raw bytes.
func JSON(data []byte) []byte {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return []byte(`"(not JSON; hidden)"`)
	}
	out, err := json.Marshal(Value(v))
	if err != nil {
		return []byte(`"(unprintable; hidden)"`)
	}
	return out
}

// SecretValues returns the secrets inside v (a decoded JSON value such as a job's task): the
// values of secret-named fields (proxyPassword, ...) and the passwords inside URL strings (the
// "proxy" URL form). Use it with Text to clean text that may echo them.
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
			out = append(out, secretParamValues(t)...)
		}
	}
	walk(v)
	return out
}

// urlUserinfo matches the userinfo of a URL inside free text, scheme://user:password@, the
// password running to the last '@' before a space or '/' (passwords hold '@' unescaped). The
// user may hold '@' too, as Go's URL parser reads it ("a://@:pw@" has user "@").
var urlUserinfo = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://[^\s/:]*:)[^\s/]*@`)

// urlUser matches a userinfo that is a user alone inside free text, scheme://user@: Redis URLs
// (and many webhooks) carry a password there ("redis://Secret@host"), so it goes as URL's does.
// It runs to the last '@' before a space or '/', as a user may hold '@'.
var urlUser = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)[^\s/:]+@`)

// Text cuts secrets out of free text, such as an error description a provider wrote: the
// password of any URL in it, and every one of the given secrets (see SecretValues) of at least
// three bytes, wherever it shows in any letter case or escaped (see secretPattern): an echo of
// "PROXYPW!SECRET42" as "PrOxYpW%21sEcReT42" goes too. A text that was cut short before it got
// here may end with a secret's first bytes (at least three, before an optional "…" or "...");
// those go as well.
func Text(text string, secrets ...string) string {
	return newSecretRedactor(secrets).text(text)
}

// secretRedactor is Text with its secrets' patterns compiled once, for the many strings of
// one JSON value (JSONSecrets): compiling a secret's pattern costs far more than matching
// a short string with it.
type secretRedactor struct {
	secrets  []string
	patterns []*regexp.Regexp // by secret; nil where it is matched byte for byte (or skipped)
}

func newSecretRedactor(secrets []string) secretRedactor {
	r := secretRedactor{secrets: secrets, patterns: make([]*regexp.Regexp, len(secrets))}
	for i, s := range secrets {
		if len(s) >= 3 {
			r.patterns[i] = secretPattern(s)
		}
	}
	return r
}

// text is Text(text, r.secrets...).
func (r secretRedactor) text(text string) string {
	text = urlUserinfo.ReplaceAllString(text, "${1}"+Marker+"@")
	text = redactQuery(urlUser.ReplaceAllString(text, "${1}"+Marker+"@"))
	for i, s := range r.secrets {
		if len(s) < 3 { // a one- or two-character "secret" would shred the text, and hides nothing
			continue
		}
		if re := r.patterns[i]; re != nil {
			text = re.ReplaceAllLiteralString(text, Marker)
		} else {
			text = strings.ReplaceAll(strings.ReplaceAll(text, s, Marker), url.QueryEscape(s), Marker)
		}
	}
	return redactCutSecret(text, r.secrets)
}

// AndTruncate redacts text as Text does and then cuts it to at most limit bytes on a
// UTF-8 boundary, ending a cut text with "…". Redacting first matters: cutting first could leave
// the first bytes of a secret that the redaction no longer recognises.
func AndTruncate(text string, limit int, secrets ...string) string {
	text = Text(text, secrets...)
	if len(text) <= limit {
		return text
	}
	const mark = "…"
	cut := limit - len(mark)
	if cut < 0 {
		cut, limit = limit, -1 // no room for the mark
	}
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	if limit < 0 {
		return text[:cut]
	}
	return text[:cut] + mark
}

// JSONSecrets returns raw (a JSON value such as a solution AnySolver returned) with every
// given secret and URL password cut out of its strings, object keys and numbers, as Text
// cuts them out of text. A value with nothing to cut comes back unchanged, byte for byte; one
// that had something is re-encoded (object keys sorted, numbers kept exactly). A value that is
// not JSON comes back as a JSON string of its redacted text, so the result is JSON (empty stays
// empty).
func JSONSecrets(raw json.RawMessage, secrets ...string) json.RawMessage {
	r := newSecretRedactor(secrets)
	if len(raw) == 0 || (r.text(string(raw)) == string(raw) && json.Valid(raw)) {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		out, _ := json.Marshal(r.text(string(raw)))
		return out
	}
	out, err := json.Marshal(redactStrings(v, r))
	if err != nil || r.text(string(out)) != string(out) {
		// A secret split over several strings: hide the whole value rather than keep a piece.
		out, _ = json.Marshal(Marker)
	}
	return out
}

// redactStrings returns a copy of v (decoded with UseNumber) with Text applied to every
// string, key and number; a number that held a secret becomes the Marker string.
func redactStrings(v any, r secretRedactor) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, val := range t {
			out[r.text(k)] = redactStrings(val, r)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			out[i] = redactStrings(val, r)
		}
		return out
	case string:
		return r.text(t)
	case json.Number:
		if r.text(t.String()) != t.String() {
			return Marker
		}
		return t
	default:
		return v
	}
}

// secretPattern matches secret in any letter case (Unicode simple folding) and in the escaped
// forms an echo of it takes, mixed freely character by character: percent-encoding of any of its
// bytes (%21, %2a), '+' for a space (query escaping), JSON and JavaScript escapes (\u0021, \",
// \\, \/, \n), Go's \x21, and HTML character references (&#33;, &#x21;, &amp;). A secret escaped
// twice over (%2521) or otherwise encoded (base64) is not recognised.
//
// A secret longer than maxPatternSecret bytes is matched in any case as it is, query-escaped
// and path-escaped only. It returns nil for a secret that is not UTF-8 (or too large for a
// regular expression), which Text then matches byte for byte, as it is and query-escaped.
func secretPattern(secret string) *regexp.Regexp {
	if !utf8.ValidString(secret) {
		return nil
	}
	if len(secret) > maxPatternSecret {
		re, err := regexp.Compile("(?i:" + regexp.QuoteMeta(secret) + "|" + regexp.QuoteMeta(url.QueryEscape(secret)) +
			"|" + regexp.QuoteMeta(url.PathEscape(secret)) + ")")
		if err != nil {
			return nil
		}
		return re
	}
	var b strings.Builder
	b.WriteString("(?i:")
	for _, r := range secret {
		b.WriteString("(?:")
		for i, form := range runeForms(r) {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(form)
		}
		b.WriteByte(')')
	}
	b.WriteByte(')')
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil
	}
	return re
}

// maxPatternSecret is the longest secret matched in every escaped form; API keys and proxy
// passwords are far shorter, and a longer one would cost a large pattern per call.
const maxPatternSecret = 512

// runeForms returns the patterns (inside a case-insensitive group) that one character of a
// secret may take in an echo: itself in any case, and each case variant escaped.
func runeForms(r rune) []string {
	forms := []string{regexp.QuoteMeta(string(r))}
	variants := []rune{r}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		variants = append(variants, f)
	}
	for _, v := range variants {
		var pct, goHex strings.Builder
		for _, c := range []byte(string(v)) {
			fmt.Fprintf(&pct, "%%%02x", c)
			fmt.Fprintf(&goHex, `\\x%02x`, c)
		}
		forms = append(forms, pct.String(), goHex.String(), fmt.Sprintf(`&#0*%d;`, v), fmt.Sprintf(`&#x0*%x;`, v))
		if v > 0xFFFF {
			hi, lo := utf16.EncodeRune(v)
			forms = append(forms, fmt.Sprintf(`\\u%04x\\u%04x`, hi, lo))
		} else {
			forms = append(forms, fmt.Sprintf(`\\u%04x`, v))
		}
	}
	switch r {
	case ' ':
		forms = append(forms, `\+`)
	case '"':
		forms = append(forms, `\\"`, `&quot;`)
	case '\\':
		forms = append(forms, `\\\\`)
	case '/':
		forms = append(forms, `\\/`)
	case '\'':
		forms = append(forms, `\\'`, `&apos;`)
	case '&':
		forms = append(forms, `&amp;`)
	case '<':
		forms = append(forms, `&lt;`)
	case '>':
		forms = append(forms, `&gt;`)
	case '\b', '\f', '\n', '\r', '\t':
		forms = append(forms, regexp.QuoteMeta(strings.Trim(strconv.Quote(string(r)), `"`)))
	}
	return forms
}

// redactCutSecret replaces the first bytes (at least three) of a secret that end text, or end it
// before a cut mark ("…" or "..."), with Marker: the end of a text cut short upstream.
func redactCutSecret(text string, secrets []string) string {
	body := text
	var tail string
	for _, mark := range []string{"…", "..."} {
		if strings.HasSuffix(body, mark) {
			body, tail = strings.TrimSuffix(body, mark), mark
			break
		}
	}
	for _, s := range secrets {
		for n := len(s) - 1; n >= 3; n-- {
			if len(body) >= n && strings.EqualFold(body[len(body)-n:], s[:n]) {
				return body[:len(body)-n] + Marker + tail
			}
		}
	}
	return text
}
