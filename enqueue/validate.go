package enqueue

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/solvequeue/solvequeue/classify"
)

// MaxRetriesLimit is the largest retry budget a job may ask for: the policy's own limit.
const MaxRetriesLimit = classify.MaxRetriesLimit

// MaxJobBytes bounds the size of one job, counted as the text of its fields, keys, strings and
// numbers with their JSON punctuation (escapes not counted): the same 16 MiB as a batch line
// (MaxLineBytes), so a job the CLI reads is one the library takes, and a producer cannot fill
// Redis with one job.
const MaxJobBytes = MaxLineBytes

// ValidationError says which field of a job is wrong and why. Batch submission wraps it with the
// line number.
type ValidationError struct {
	Field   string // dotted path, e.g. "task.websiteURL"
	Problem string // what is wrong, as the end of a sentence
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

var queueName = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// ValidQueueName reports whether name can be a queue: 1-64 letters, digits, '_', '.', ':' or
// '-' (no braces or spaces, which would break asynq's Redis keys). Jobs and workers share it.
func ValidQueueName(name string) bool { return queueName.MatchString(name) }

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
			return &ValidationError{"id", fmt.Sprintf("is %d characters long; at most 200", len(j.ID))}
		}
		if err := validID(j.ID); err != nil {
			return err
		}
	}
	if j.Queue != "" && !queueName.MatchString(j.Queue) {
		return &ValidationError{"queue", fmt.Sprintf("%q must be 1-64 characters of letters, digits, '_', '.', ':' or '-'", j.Queue)}
	}
	if j.Deadline != "" {
		if _, err := ParseDeadline(j.Deadline, time.Now()); err != nil {
			return err
		}
	}
	if j.MaxRetries != nil && (*j.MaxRetries < 0 || *j.MaxRetries > MaxRetriesLimit) {
		return &ValidationError{"maxRetries", fmt.Sprintf("must be between 0 and %d, got %d", MaxRetriesLimit, *j.MaxRetries)}
	}
	if err := validateProviders(j.Provider, j.Providers); err != nil {
		return err
	}
	if j.CallbackURL != "" {
		if err := ValidateCallbackURL(j.CallbackURL); err != nil {
			return err
		}
	}
	if err := validateTask(j.Task); err != nil {
		return err
	}
	if n := j.size(MaxJobBytes); n > MaxJobBytes {
		return &ValidationError{"(job)", fmt.Sprintf("is more than %d bytes of JSON; at most %d (MaxJobBytes)", MaxJobBytes, MaxJobBytes)}
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
		return &ValidationError{"id", fmt.Sprintf("%q is not valid UTF-8", id)}
	}
	for _, r := range id {
		switch {
		case unicode.IsSpace(r) || unicode.IsControl(r):
			return &ValidationError{"id", fmt.Sprintf("%q contains white space or a control character", id)}
		case !unicode.IsPrint(r):
			return &ValidationError{"id", fmt.Sprintf("%q contains %U, which is not printable (a format, bidi or "+
				"invisible character); use letters, digits and punctuation", id, r)}
		}
	}
	return nil
}

// MaxProviders is the most providers a job may list to fail over between.
const MaxProviders = 16

func validateProviders(provider string, providers []string) error {
	if provider != "" && len(providers) > 0 {
		return &ValidationError{"providers", "give provider or providers, not both (provider is the one-element form)"}
	}
	if len(providers) > MaxProviders {
		return &ValidationError{"providers", fmt.Sprintf("lists %d providers; at most %d", len(providers), MaxProviders)}
	}
	seen := map[string]bool{}
	for i, p := range providers {
		field := fmt.Sprintf("providers[%d]", i)
		if strings.TrimSpace(p) == "" || len(p) > 64 || strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
			return &ValidationError{field, fmt.Sprintf("%q: want a provider name such as CapSolver (1-64 printable characters, no spaces)", p)}
		}
		if seen[strings.ToLower(p)] {
			return &ValidationError{field, fmt.Sprintf("%q is listed twice", p)}
		}
		seen[strings.ToLower(p)] = true
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
		return &ValidationError{"callbackUrl", fmt.Sprintf("is %d bytes long; at most %d", len(raw), MaxCallbackURLLength)}
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return &ValidationError{"callbackUrl", fmt.Sprintf("%q must be a full http:// or https:// URL", RedactURL(raw))}
	}
	return nil
}

func validateTask(task map[string]any) error {
	if task == nil {
		return &ValidationError{"task", "is required: the AnySolver task object, e.g. {\"type\":\"RecaptchaV2TaskProxyless\",...}"}
	}
	typ, ok := task["type"].(string)
	if !ok || strings.TrimSpace(typ) == "" {
		return &ValidationError{"task.type", "is required and must be a non-empty string"}
	}
	if err := checkTask(task, typ); err != nil {
		return err
	}
	return validateProxy(task)
}

func requireString(task map[string]any, field, typ string) error {
	s, ok := task[field].(string)
	if !ok || strings.TrimSpace(s) == "" {
		return &ValidationError{"task." + field, "is required for " + typ + " and must be a non-empty string"}
	}
	return nil
}

func requireURL(task map[string]any, field, typ string) error {
	if err := requireString(task, field, typ); err != nil {
		return err
	}
	raw := task[field].(string)
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &ValidationError{"task." + field, fmt.Sprintf("%q must be a full http:// or https:// URL", raw)}
	}
	return nil
}

func requireBase64(task map[string]any, field, typ string) error {
	if err := requireString(task, field, typ); err != nil {
		return err
	}
	s := task[field].(string)
	if i := strings.Index(s, ";base64,"); strings.HasPrefix(s, "data:") && i > 0 {
		s = s[i+len(";base64,"):]
	}
	s = strings.TrimRight(s, "=")
	if _, err := base64.RawStdEncoding.DecodeString(s); err != nil {
		if _, err2 := base64.RawURLEncoding.DecodeString(s); err2 != nil {
			return &ValidationError{"task." + field, "must be the image in base64: " + err.Error()}
		}
	}
	return nil
}

// validateProxy checks the proxy when the task carries one: either the fields proxyType,
// proxyAddress, proxyPort (proxyLogin and proxyPassword optional) or one "proxy" URL.
func validateProxy(task map[string]any) error {
	if raw, ok := task["proxy"]; ok {
		s, isString := raw.(string)
		if !isString || s == "" {
			return &ValidationError{"task.proxy", "must be a proxy URL string such as http://user:pass@host:port"}
		}
		u, err := url.Parse(s)
		if err != nil || u.Host == "" || u.Port() == "" {
			return &ValidationError{"task.proxy", "must be a proxy URL with a scheme, host and port, such as http://user:pass@host:port"}
		}
		return nil
	}
	_, hasType := task["proxyType"]
	_, hasAddr := task["proxyAddress"]
	_, hasPort := task["proxyPort"]
	if !hasType && !hasAddr && !hasPort {
		return nil
	}
	if typ, _ := task["proxyType"].(string); !oneOf(strings.ToLower(typ), "http", "https", "socks4", "socks5") {
		return &ValidationError{"task.proxyType", fmt.Sprintf("must be http, https, socks4 or socks5, got %v", task["proxyType"])}
	}
	if addr, _ := task["proxyAddress"].(string); strings.TrimSpace(addr) == "" {
		return &ValidationError{"task.proxyAddress", "is required with proxyType"}
	}
	if !validPort(task["proxyPort"]) {
		return &ValidationError{"task.proxyPort", fmt.Sprintf("must be a port number 1-65535, got %v", task["proxyPort"])}
	}
	return nil
}

func validPort(v any) bool {
	var s string
	switch p := v.(type) {
	case json.Number:
		s = p.String()
	case float64:
		s = strconv.FormatFloat(p, 'f', -1, 64)
	case int:
		s = strconv.Itoa(p)
	case string:
		s = p
	default:
		return false
	}
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= 65535
}

func oneOf(s string, options ...string) bool {
	for _, o := range options {
		if s == o {
			return true
		}
	}
	return false
}
