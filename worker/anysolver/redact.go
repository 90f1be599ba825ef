package anysolver

import (
	"errors"
	"strings"

	"github.com/solvequeue/solvequeue/internal/redact"
)

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
	return strings.ReplaceAll(s, key, redact.Marker)
}

// redactedMark shows whether a key is set without showing it.
func redactedMark(key string) string {
	if key == "" {
		return `""`
	}
	return redact.Marker
}
