package anysolver

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/solvequeue/solvequeue/internal/redact"
)

// redact keeps the API key out of err's text. The client never puts the key in an error itself,
// but a server may echo it back in an errorCode, errorDescription or status; parseAnswer has
// scrubbed those already, and this catches what other errors quote.
func (c *Client) redact(err error) error {
	if err == nil || c.keyText == nil || !c.keyText.MatchString(err.Error()) {
		return err
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && err == error(apiErr) {
		apiErr.ErrorCode = c.scrub(apiErr.ErrorCode)
		apiErr.ErrorDescription = c.scrub(apiErr.ErrorDescription)
		return apiErr
	}
	var tErr *TransportError
	if errors.As(err, &tErr) && err == error(tErr) {
		tErr.Err = &redactedError{err: tErr.Err, scrub: c.scrub}
		return tErr
	}
	return &redactedError{err: err, scrub: c.scrub}
}

// scrub cuts the API key out of text a server wrote, in any case and in the forms an echo
// takes: as sent, JSON-escaped, percent-encoded (query or path style).
func (c *Client) scrub(s string) string {
	if c.keyText == nil {
		return s
	}
	return c.keyText.ReplaceAllLiteralString(s, redact.Marker)
}

// keyPattern matches key as a server may echo it back, or is nil for an empty key.
func keyPattern(key string) *regexp.Regexp {
	if key == "" {
		return nil
	}
	forms := map[string]bool{key: true, url.QueryEscape(key): true, url.PathEscape(key): true}
	if j, err := json.Marshal(key); err == nil {
		forms[string(j[1:len(j)-1])] = true
	}
	quoted := make([]string, 0, len(forms))
	for f := range forms {
		quoted = append(quoted, regexp.QuoteMeta(f))
	}
	slices.SortFunc(quoted, func(a, b string) int { return len(b) - len(a) }) // longest first
	return regexp.MustCompile("(?i)(?:" + strings.Join(quoted, "|") + ")")
}

// redactedError is err with the key cut out of its text; errors.Is and errors.As still see err.
type redactedError struct {
	err   error
	scrub func(string) string
}

func (e *redactedError) Error() string { return e.scrub(e.err.Error()) }
func (e *redactedError) Unwrap() error { return e.err }

func redactKey(s, key string) string {
	if key == "" {
		return s
	}
	return keyPattern(key).ReplaceAllLiteralString(s, redact.Marker)
}

// redactedMark shows whether a key is set without showing it.
func redactedMark(key string) string {
	if key == "" {
		return `""`
	}
	return redact.Marker
}

// redactURLPassword shows a base URL for an error message without its password: as
// url.URL.Redacted shows it when it parsed, else with everything between "://" and the last '@'
// (its user and password, however malformed) cut.
func redactURLPassword(raw string, u *url.URL, parseErr error) string {
	if parseErr == nil && u != nil {
		return u.Redacted()
	}
	start := strings.Index(raw, "://")
	end := strings.LastIndex(raw, "@")
	if start < 0 || end <= start+len("://") {
		return raw
	}
	return raw[:start+len("://")] + redact.Marker + raw[end:]
}
