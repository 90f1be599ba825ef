package jobwire

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ValidationError says which field of a job is wrong and why. Batch submission wraps it with the
// line number.
type ValidationError struct {
	Field   string // dotted path, e.g. "task.websiteURL"
	Problem string // what is wrong, as the end of a sentence
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// MaxProviders is the most providers a job may list to fail over between.
const MaxProviders = 16

// ValidateProviders checks a job's provider and providers: one form or the other, at most
// MaxProviders names, each a printable word (provider as each entry of providers), none twice.
func ValidateProviders(provider string, providers []string) error {
	if provider != "" && len(providers) > 0 {
		return &ValidationError{"providers", "give provider or providers, not both (provider is the one-element form)"}
	}
	if provider != "" {
		return validateProviderName("provider", provider)
	}
	if len(providers) > MaxProviders {
		return &ValidationError{"providers", fmt.Sprintf("lists %d providers; at most %d", len(providers), MaxProviders)}
	}
	seen := map[string]bool{}
	for i, p := range providers {
		field := fmt.Sprintf("providers[%d]", i)
		if err := validateProviderName(field, p); err != nil {
			return err
		}
		if seen[strings.ToLower(p)] {
			return &ValidationError{field, fmt.Sprintf("%q is listed twice", p)}
		}
		seen[strings.ToLower(p)] = true
	}
	return nil
}

// maxProviderName bounds a provider name, in bytes.
const maxProviderName = 64

// validateProviderName checks one provider name: 1-64 bytes of UTF-8, printable characters and
// no white space (no newline, no bidi control), so that it can be a metric label, a Redis key and a log field as it is. A name
// that fails is quoted only as far as the bound: it may be a megabyte long.
func validateProviderName(field, p string) error {
	if strings.TrimSpace(p) == "" || len(p) > maxProviderName || !utf8.ValidString(p) || strings.ContainsFunc(p, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) {
		shown := p
		if len(shown) > maxProviderName {
			shown = shown[:maxProviderName] + "..."
		}
		return &ValidationError{field, fmt.Sprintf("%q: want a provider name such as CapSolver (1-%d printable characters, no spaces)", shown, maxProviderName)}
	}
	return nil
}

// DescribeJSONError turns encoding/json's errors into ones that name the field or byte offset.
func DescribeJSONError(err error) error {
	var syntax *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return &ValidationError{Field: "(line)", Problem: fmt.Sprintf("is not valid JSON at byte %d: %v", syntax.Offset, err)}
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "(line)"
		}
		return &ValidationError{Field: field, Problem: fmt.Sprintf("must be %s, got JSON %s", jsonKind(typeErr.Type.Kind().String()), typeErr.Value)}
	case errors.Is(err, io.EOF):
		return &ValidationError{Field: "(line)", Problem: "is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &ValidationError{Field: "(line)", Problem: "is truncated JSON"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		quoted := strings.TrimPrefix(err.Error(), "json: unknown field ")
		name, uerr := strconv.Unquote(quoted)
		if uerr != nil {
			name = quoted
		}
		if name == "" {
			name = `""` // the empty key: name it visibly
		}
		return &ValidationError{Field: name, Problem: "is not a job field (want id, queue, provider, providers, settings, deadline, maxRetries, callbackUrl, task)"}
	default:
		return &ValidationError{Field: "(line)", Problem: err.Error()}
	}
}

func jsonKind(goKind string) string {
	switch goKind {
	case "map", "struct":
		return "an object"
	case "ptr", "int", "int64":
		return "a number"
	case "string":
		return "a string"
	default:
		return goKind
	}
}

// ValidateTask checks an AnySolver task object: its type, the fields its type requires (see
// taskTypes: every type name the anti-captcha, CapMonster and 2captcha clients send, and
// AnySolver's own), and its proxy. Any other type passes through for AnySolver to judge, with the
// websiteURL and site key it carries checked all the same.
func ValidateTask(task map[string]any) error {
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
