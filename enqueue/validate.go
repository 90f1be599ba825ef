package enqueue

import (
	"encoding/json"
	"fmt"
	"net/url"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/queuereg"
	"github.com/solvequeue/solvequeue/internal/redact"
)

// MaxRetriesLimit is the largest retry budget a job may ask for: the policy's own limit.
const MaxRetriesLimit = classify.MaxRetriesLimit

// MaxJobBytes bounds the size of one job, counted as the text of its fields, keys, strings and
// numbers with their JSON punctuation (escapes not counted): the same 16 MiB as a batch line
// (MaxLineBytes), so a job the CLI reads is one the library takes, and a producer cannot fill
// Redis with one job.
const MaxJobBytes = MaxLineBytes

// Validate checks a job before anything reaches Redis. Every task type name the anti-captcha,
// CapMonster and 2captcha clients send, and AnySolver's own, is checked for its required fields
// (see taskTypes): every type whose name contains recaptcha, hcaptcha, turnstile or
// popularcaptcha, and NoCaptchaTask, need websiteURL (a full http(s) URL) and websiteKey;
// FunCaptcha websitePublicKey; GeeTest gt and challenge (v3) or its captcha_id (v4);
// ImageToTextTask and the other image tasks body in base64. Any other type passes through for
// AnySolver to judge, with the websiteURL and site key it carries checked all the same. The
// error is a *ValidationError naming the field.
func (j Job) Validate() error {
	if j.ID != "" {
		if len(j.ID) > 200 {
			return &ValidationError{Field: "id", Problem: fmt.Sprintf("is %d characters long; at most 200", len(j.ID))}
		}
		if err := validID(j.ID); err != nil {
			return err
		}
	}
	if j.Queue != "" && !queuereg.ValidName(j.Queue) {
		return &ValidationError{Field: "queue", Problem: fmt.Sprintf("%q must be 1-64 characters of letters, digits, '_', '.', ':' or '-'", j.Queue)}
	}
	if j.Deadline != "" {
		if _, err := ParseDeadline(j.Deadline, time.Now()); err != nil {
			return err
		}
	}
	if j.MaxRetries != nil && (*j.MaxRetries < 0 || *j.MaxRetries > MaxRetriesLimit) {
		return &ValidationError{Field: "maxRetries", Problem: fmt.Sprintf("must be between 0 and %d, got %d", MaxRetriesLimit, *j.MaxRetries)}
	}
	if err := jobwire.ValidateProviders(j.Provider, j.Providers); err != nil {
		return err
	}
	if j.CallbackURL != "" {
		if err := ValidateCallbackURL(j.CallbackURL); err != nil {
			return err
		}
	}
	if err := jobwire.ValidateTask(j.Task); err != nil {
		return err
	}
	if n := j.size(MaxJobBytes); n > MaxJobBytes {
		return &ValidationError{Field: "(job)", Problem: fmt.Sprintf("is more than %d bytes of JSON; at most %d (MaxJobBytes)", MaxJobBytes, MaxJobBytes)}
	}
	return nil
}

// size returns the job's size as MaxJobBytes counts it, or a number over limit as soon as it
// passes limit (so a huge job is not walked to its end).
func (j Job) size(limit int) int {
	n := 2 + len(j.ID) + len(j.Queue) + len(j.Provider) + len(j.Deadline) + len(j.CallbackURL) + valueSize(j.Providers, limit)
	n += valueSize(j.Settings, limit-n)
	if n > limit {
		return n
	}
	return n + valueSize(j.Task, limit-n)
}

// valueSize returns the JSON size of v (escapes not counted), stopping once it passes limit.
// Values of types a decoded job does not hold (a Go caller's struct or typed slice) are encoded
// to be counted.
func valueSize(v any, limit int) int {
	switch t := v.(type) {
	case nil:
		return len("null")
	case string:
		return len(t) + 2
	case json.Number:
		return len(t)
	case bool:
		return len("false")
	case float64, float32, int, int64, int32, uint, uint64, uint32:
		return len(fmt.Sprint(t))
	case map[string]any:
		n := 2
		for k, val := range t {
			n += len(k) + 4 + valueSize(val, limit-n)
			if n > limit {
				return n
			}
		}
		return n
	case []any:
		n := 2
		for _, val := range t {
			n += 1 + valueSize(val, limit-n)
			if n > limit {
				return n
			}
		}
		return n
	case map[string]string:
		n := 2
		for k, val := range t {
			n += len(k) + len(val) + 6
		}
		return n
	case []string:
		n := 2
		for _, val := range t {
			n += len(val) + 3
		}
		return n
	default:
		data, err := json.Marshal(t)
		if err != nil {
			return 0 // not encodable: submitting it fails with encoding's own error
		}
		return len(data)
	}
}

// validID checks that a job ID is printable UTF-8 without white space: no control or format
// characters (U+202E, the right-to-left override, makes "gpj.exe" read "exe.jpg"), no zero-width
// or private-use characters, nothing that shows differently from what it is in a log or the UI.
func validID(id string) error {
	if !utf8.ValidString(id) {
		return &ValidationError{Field: "id", Problem: fmt.Sprintf("%q is not valid UTF-8", id)}
	}
	for _, r := range id {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return &ValidationError{Field: "id", Problem: fmt.Sprintf("%q contains white space or a control character", id)}
		case !unicode.IsPrint(r):
			return &ValidationError{Field: "id", Problem: fmt.Sprintf("%q contains %U, which is not printable (a format, bidi or "+
				"invisible character); use letters, digits and punctuation", id, r)}
		}
	}
	return nil
}

// MaxCallbackURLLength is the longest callbackUrl a job may carry.
const MaxCallbackURLLength = 2048

// ValidateCallbackURL checks a job's callbackUrl: an absolute http:// or https:// URL with a
// host, at most MaxCallbackURLLength bytes. Where the host resolves to is judged at delivery,
// when the address is known (a name may resolve elsewhere by then).
func ValidateCallbackURL(raw string) error {
	if len(raw) > MaxCallbackURLLength {
		return &ValidationError{Field: "callbackUrl", Problem: fmt.Sprintf("is %d bytes long; at most %d", len(raw), MaxCallbackURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return &ValidationError{Field: "callbackUrl", Problem: fmt.Sprintf("%q must be a full http:// or https:// URL", redact.URL(raw))}
	}
	return nil
}
