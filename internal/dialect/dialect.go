// Package dialect maps the codes an outcome can carry (AnySolver's, and solvequeue's own) to what
// each of the gateway's protocols answers for them: the anti-captcha/CapMonster dialect of the
// createTask protocol, and 2captcha's. It owns the outcome codes' rows; the gateway adds the
// rows of the codes it answers to a request, and answers in both protocols.
package dialect

import (
	"strings"
)

// Origin says who gives a code: AnySolver (an outcome's error), solvequeue (an outcome code of
// its own, or a transport failure), or the gateway itself (its answer to a request).
type Origin string

// The origins of the codes: the rows here are AnySolver's and solvequeue's; the gateway's rows
// are its own.
const (
	OriginAnySolver  Origin = "AnySolver"
	OriginSolvequeue Origin = "solvequeue"
	OriginGateway    Origin = "gateway"
)

// Row is one row of the code table: a code, who gives it, and what each protocol answers for it.
type Row struct {
	// Origin is who gives Code.
	Origin Origin
	// Code is AnySolver's code, solvequeue's own, or the gateway's.
	Code string
	// Dialect is what the createTask protocol answers in errorCode: the anti-captcha/CapMonster
	// code that means the same, so that their client libraries map it to a type they know.
	// Empty means Code itself (the createTask protocol is AnySolver's, and Code is one of its
	// codes or has no equivalent in the dialect). Whenever Dialect is answered, Code is kept at
	// the start of errorDescription.
	Dialect string
	// TwoCaptcha is what 2captcha's protocol (in.php, res.php) answers.
	TwoCaptcha string
	// Why says why, where the mapping is not plain.
	Why string
}

// Codes of the anti-captcha/CapMonster dialect and of 2captcha's protocol that the rows use; the
// exported ones are for the gateway's own rows and its 2captcha answers.
const (
	NoSlot                = "ERROR_NO_SLOT_AVAILABLE"
	BadParameters         = "ERROR_BAD_PARAMETERS"
	TooBig                = "ERROR_TOO_BIG_CAPTCHA_FILESIZE"
	ImageType             = "ERROR_IMAGE_TYPE_NOT_SUPPORTED"
	NoSuchCaptchaID       = "ERROR_NO_SUCH_CAPCHA_ID"
	Unsolvable            = "ERROR_CAPTCHA_UNSOLVABLE"
	ZeroSize              = "ERROR_ZERO_CAPTCHA_FILESIZE"
	BadProxy              = "ERROR_BAD_PROXY"
	codeTaskNotSupported  = "ERROR_TASK_NOT_SUPPORTED"
	codeZeroBalance       = "ERROR_ZERO_BALANCE"
	operatorAccount       = "the operator's AnySolver account, not the client's: the client hears that the service cannot take work now, and the queue pauses until the operator fixes it"
	serviceUnavailableWhy = "AnySolver or its provider cannot take work now"
	jobFailedWhy          = "the job failed without a fault of the client's; it may send the captcha again"
)

// outcomeRows are the rows of every AnySolver seed code and every code of solvequeue's own that
// an outcome can carry.
var outcomeRows = [...]Row{
	{OriginAnySolver, "CAPTCHA_UNSOLVABLE", Unsolvable, Unsolvable, ""},
	{OriginAnySolver, "DOMAIN_BANNED", "ERROR_DOMAIN_NOT_ALLOWED", Unsolvable, "2captcha has no name for a refused domain"},
	{OriginAnySolver, "ERROR_KEY_DOES_NOT_EXIST", NoSlot, NoSlot, operatorAccount},
	{OriginAnySolver, "ERROR_USER_BANNED", NoSlot, NoSlot, operatorAccount},
	{OriginAnySolver, "ERROR_ZERO_BALANCE", NoSlot, NoSlot, operatorAccount},
	{OriginAnySolver, "IMAGE_CORRUPTED", ImageType, ImageType, ""},
	{OriginAnySolver, "IMAGE_TOO_LARGE", TooBig, TooBig, ""},
	{OriginAnySolver, "IMAGE_TOO_SMALL", ZeroSize, ZeroSize, ""},
	{OriginAnySolver, "INTERNAL_ERROR", "", Unsolvable, jobFailedWhy},
	{OriginAnySolver, "INVALID_DOMAIN", "ERROR_RECAPTCHA_INVALID_DOMAIN", "ERROR_BAD_TOKEN_OR_PAGEURL", ""},
	{OriginAnySolver, "INVALID_SITEKEY", "ERROR_RECAPTCHA_INVALID_SITEKEY", "ERROR_GOOGLEKEY", ""},
	{OriginAnySolver, "INVALID_TASK_DATA", "", BadParameters, ""},
	{OriginAnySolver, "INVALID_USERAGENT", "", BadParameters, ""},
	{OriginAnySolver, "INVALID_WEBSITEURL", "", "ERROR_PAGEURL", ""},
	{OriginAnySolver, "NO_PROVIDERS_AVAILABLE", NoSlot, NoSlot, "a provider configuration the operator must fix"},
	{OriginAnySolver, "PROVIDER_BALANCE_ERROR", NoSlot, NoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROVIDER_BALANCE_NOT_SUPPORTED", NoSlot, NoSlot, "a provider configuration the operator must fix"},
	{OriginAnySolver, "PROVIDER_GLOBAL_LIMIT_REACHED", NoSlot, NoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROVIDER_RATE_LIMITED", NoSlot, NoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROVIDER_RESPONSE_MALFORMED", "", Unsolvable, jobFailedWhy},
	{OriginAnySolver, "PROVIDER_TASK_NOT_SUPPORTED", codeTaskNotSupported, BadParameters, ""},
	{OriginAnySolver, "PROVIDER_UNREACHABLE", NoSlot, NoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROXY_AUTH_FAILED", "ERROR_PROXY_NOT_AUTHORISED", BadProxy, ""},
	{OriginAnySolver, "PROXY_BANNED", "ERROR_PROXY_BANNED", BadProxy, ""},
	{OriginAnySolver, "PROXY_CONNECTION_FAILED", "ERROR_PROXY_CONNECT_REFUSED", "ERROR_PROXY_CONNECTION_FAILED", ""},
	{OriginAnySolver, "PROXY_INCOMPATIBLE", "ERROR_PROXY_INCOMPATIBLE_HTTP_VERSION", BadProxy, ""},
	{OriginAnySolver, "PROXY_MISSING", "", BadParameters, ""},
	{OriginAnySolver, "RATE_LIMITED", NoSlot, NoSlot, "AnySolver limits the operator's account, not the client"},
	{OriginAnySolver, "SERVICE_UNAVAILABLE", NoSlot, NoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "TASK_NOT_FOUND", Unsolvable, Unsolvable, "AnySolver's task expired; the client's own taskId is fine"},
	{OriginAnySolver, "TASK_NOT_SUPPORTED", codeTaskNotSupported, BadParameters, ""},
	{OriginAnySolver, "TASK_TIMEOUT", Unsolvable, Unsolvable, ""},
	{OriginAnySolver, "TOKEN_EXPIRED", "ERROR_TOKEN_EXPIRED", "ERROR_TOKEN_EXPIRED", ""},
	{OriginAnySolver, "TRANSFORMATION_ERROR", "", Unsolvable, jobFailedWhy},
	{OriginAnySolver, "UNKNOWN_PROVIDER_ERROR", "", Unsolvable, jobFailedWhy},
	{OriginAnySolver, "VALIDATION_ERROR", "", BadParameters, ""},

	{OriginSolvequeue, "INVALID_PAYLOAD", "", BadParameters, "the job in Redis could not be read"},
	{OriginSolvequeue, "JOB_EXPIRED", Unsolvable, Unsolvable, "the job's deadline passed before any attempt; nothing was paid"},
	{OriginSolvequeue, "RECORD_UNREADABLE", "", Unsolvable, jobFailedWhy},
	{OriginSolvequeue, "WORKER_ERROR", "", Unsolvable, jobFailedWhy},
	{OriginSolvequeue, "BUDGET_SPENT", codeZeroBalance, codeZeroBalance, "the budget of the key's own queue is spent"},
	{OriginSolvequeue, "TIMEOUT", NoSlot, NoSlot, "AnySolver could not be reached"},
	{OriginSolvequeue, "CONNECTION_ERROR", NoSlot, NoSlot, "AnySolver could not be reached"},
	{OriginSolvequeue, "HTTP_429", NoSlot, NoSlot, "AnySolver limits the operator's account, not the client"},
	{OriginSolvequeue, "HTTP_5XX", NoSlot, NoSlot, "AnySolver could not be reached"},
	{OriginSolvequeue, "HTTP_4XX", "", Unsolvable, jobFailedWhy},
	{OriginSolvequeue, "HTTP_UNEXPECTED", "", Unsolvable, jobFailedWhy},
	{OriginSolvequeue, "BAD_RESPONSE", "", Unsolvable, jobFailedWhy},
	{OriginSolvequeue, "RESPONSE_TOO_LARGE", "", Unsolvable, jobFailedWhy},
}

// Rows returns the outcome codes' rows, in the order docs/gateway.md shows them (a fresh slice).
func Rows() []Row {
	return append([]Row(nil), outcomeRows[:]...)
}

// find finds the row of code from origin.
func find(origin Origin, code string) (Row, bool) {
	for _, r := range outcomeRows {
		if r.Origin == origin && r.Code == code {
			return r, true
		}
	}
	return Row{}, false
}

// Outcome finds the row of an outcome's code: AnySolver's, else solvequeue's own. A code in
// neither (a provider's code AnySolver passed on) answers itself on the createTask protocol and
// ERROR_CAPTCHA_UNSOLVABLE on 2captcha's.
func Outcome(code string) Row {
	if r, ok := find(OriginAnySolver, code); ok {
		return r
	}
	if r, ok := find(OriginSolvequeue, code); ok {
		return r
	}
	return Row{Origin: OriginAnySolver, Code: code, TwoCaptcha: Unsolvable}
}

// Answer returns what the createTask protocol answers for the row: the dialect's code and a
// description that starts with the row's own code when the two differ.
func (r Row) Answer(description string) (code, desc string) {
	if r.Dialect == "" || r.Dialect == r.Code {
		return r.Code, description
	}
	if description == "" {
		return r.Dialect, r.Code
	}
	return r.Dialect, r.Code + ": " + description
}

// Markdown renders rows as the Markdown table docs/gateway.md shows.
func Markdown(rows []Row) string {
	var b strings.Builder
	b.WriteString("| from | code | createTask answers | 2captcha answers | why |\n|---|---|---|---|---|\n")
	for _, r := range rows {
		dialect := r.Dialect
		if dialect == "" || dialect == r.Code {
			dialect = "(the same)"
		}
		b.WriteString("| " + string(r.Origin) + " | `" + r.Code + "` | " + mdCode(dialect) + " | `" + r.TwoCaptcha + "` | " + r.Why + " |\n")
	}
	return b.String()
}

func mdCode(s string) string {
	if strings.HasPrefix(s, "(") {
		return s
	}
	return "`" + s + "`"
}
