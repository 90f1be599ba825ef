package anysolver

import (
	"errors"
	"net/url"
	"strings"
)

// redactedText replaces the API key wherever it would appear in text.
const redactedText = "[redacted]"

// redact keeps the API key out of err's text. The client never puts the key in an error itself,
// but a server may echo it back in an errorCode, errorDescription or status.
func (c *Client) redact(err error) error {
	if err == nil || c.key == "" || !strings.Contains(err.Error(), c.key) {
		return err
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) && err == error(apiErr) {
		apiErr.ErrorCode = redactKey(apiErr.ErrorCode, c.key)
		apiErr.ErrorDescription = redactKey(apiErr.ErrorDescription, c.key)
		return apiErr
	}
	var tErr *TransportError
	if errors.As(err, &tErr) && err == error(tErr) {
		tErr.Err = &redactedError{err: tErr.Err, key: c.key}
		return tErr
	}
	return &redactedError{err: err, key: c.key}
}

// redactedError is err with the key cut out of its text; errors.Is and errors.As still see err.
type redactedError struct {
	err error
	key string
}

func (e *redactedError) Error() string { return redactKey(e.err.Error(), e.key) }
func (e *redactedError) Unwrap() error { return e.err }

func redactKey(s, key string) string {
	if key == "" {
		return s
	}
	return strings.ReplaceAll(s, key, redactedText)
}

// redactedMark shows whether a key is set without showing it.
func redactedMark(key string) string {
	if key == "" {
		return `""`
	}
	return redactedText
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
	return raw[:start+len("://")] + redactedText + raw[end:]
}
