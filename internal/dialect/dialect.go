package gateway

import (
	"strings"
)

// Origin says who gives a code: AnySolver (an outcome's error), solvequeue (an outcome code of
// its own, or a transport failure), or the gateway itself (its answer to a request).
type Origin string

// The origins of the codes in CodeTable.
const (
	OriginAnySolver  Origin = "AnySolver"
	OriginSolvequeue Origin = "solvequeue"
	OriginGateway    Origin = "gateway"
)

// CodeRow is one row of CodeTable: a code, who gives it, and what each protocol answers for it.
type CodeRow struct {
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

// Codes of the anti-captcha/CapMonster dialect and of 2captcha's protocol that the table uses.
const (
	codeNoSlot             = "ERROR_NO_SLOT_AVAILABLE"
	codeUnsolvable         = "ERROR_CAPTCHA_UNSOLVABLE"
	codeBadParameters      = "ERROR_BAD_PARAMETERS"
	codeTooBig             = "ERROR_TOO_BIG_CAPTCHA_FILESIZE"
	codeZeroSize           = "ERROR_ZERO_CAPTCHA_FILESIZE"
	codeImageType          = "ERROR_IMAGE_TYPE_NOT_SUPPORTED"
	codeBadProxy           = "ERROR_BAD_PROXY"
	codeTaskNotSupported   = "ERROR_TASK_NOT_SUPPORTED"
	operatorAccount        = "the operator's AnySolver account, not the client's: the client hears that the service cannot take work now, and the queue pauses until the operator fixes it"
	serviceUnavailableWhy  = "AnySolver or its provider cannot take work now"
	jobFailedWhy           = "the job failed without a fault of the client's; it may send the captcha again"
	twoCaptchaGenericWhy   = "2captcha has no closer name"
	dialectNoSuchCaptchaID = "ERROR_NO_SUCH_CAPCHA_ID"
)

// codeTable is CodeTable's content: every AnySolver seed code, every code of solvequeue's own
// that an outcome can carry, and every code the gateway answers to a request.
var codeTable = [...]CodeRow{
	{OriginAnySolver, "CAPTCHA_UNSOLVABLE", codeUnsolvable, codeUnsolvable, ""},
	{OriginAnySolver, "DOMAIN_BANNED", "ERROR_DOMAIN_NOT_ALLOWED", codeUnsolvable, "2captcha has no name for a refused domain"},
	{OriginAnySolver, "ERROR_KEY_DOES_NOT_EXIST", codeNoSlot, codeNoSlot, operatorAccount},
	{OriginAnySolver, "ERROR_USER_BANNED", codeNoSlot, codeNoSlot, operatorAccount},
	{OriginAnySolver, "ERROR_ZERO_BALANCE", codeNoSlot, codeNoSlot, operatorAccount},
	{OriginAnySolver, "IMAGE_CORRUPTED", codeImageType, codeImageType, ""},
	{OriginAnySolver, "IMAGE_TOO_LARGE", codeTooBig, codeTooBig, ""},
	{OriginAnySolver, "IMAGE_TOO_SMALL", codeZeroSize, codeZeroSize, ""},
	{OriginAnySolver, "INTERNAL_ERROR", "", codeUnsolvable, jobFailedWhy},
	{OriginAnySolver, "INVALID_DOMAIN", "ERROR_RECAPTCHA_INVALID_DOMAIN", "ERROR_BAD_TOKEN_OR_PAGEURL", ""},
	{OriginAnySolver, "INVALID_SITEKEY", "ERROR_RECAPTCHA_INVALID_SITEKEY", "ERROR_GOOGLEKEY", ""},
	{OriginAnySolver, "INVALID_TASK_DATA", "", codeBadParameters, ""},
	{OriginAnySolver, "INVALID_USERAGENT", "", codeBadParameters, ""},
	{OriginAnySolver, "INVALID_WEBSITEURL", "", "ERROR_PAGEURL", ""},
	{OriginAnySolver, "NO_PROVIDERS_AVAILABLE", codeNoSlot, codeNoSlot, "a provider configuration the operator must fix"},
	{OriginAnySolver, "PROVIDER_BALANCE_ERROR", codeNoSlot, codeNoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROVIDER_BALANCE_NOT_SUPPORTED", codeNoSlot, codeNoSlot, "a provider configuration the operator must fix"},
	{OriginAnySolver, "PROVIDER_GLOBAL_LIMIT_REACHED", codeNoSlot, codeNoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROVIDER_RATE_LIMITED", codeNoSlot, codeNoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROVIDER_RESPONSE_MALFORMED", "", codeUnsolvable, jobFailedWhy},
	{OriginAnySolver, "PROVIDER_TASK_NOT_SUPPORTED", codeTaskNotSupported, codeBadParameters, ""},
	{OriginAnySolver, "PROVIDER_UNREACHABLE", codeNoSlot, codeNoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "PROXY_AUTH_FAILED", "ERROR_PROXY_NOT_AUTHORISED", codeBadProxy, ""},
	{OriginAnySolver, "PROXY_BANNED", "ERROR_PROXY_BANNED", codeBadProxy, ""},
	{OriginAnySolver, "PROXY_CONNECTION_FAILED", "ERROR_PROXY_CONNECT_REFUSED", "ERROR_PROXY_CONNECTION_FAILED", ""},
	{OriginAnySolver, "PROXY_INCOMPATIBLE", "ERROR_PROXY_INCOMPATIBLE_HTTP_VERSION", codeBadProxy, ""},
	{OriginAnySolver, "PROXY_MISSING", "", codeBadParameters, ""},
	{OriginAnySolver, "RATE_LIMITED", codeNoSlot, codeNoSlot, "AnySolver limits the operator's account, not the client"},
	{OriginAnySolver, "SERVICE_UNAVAILABLE", codeNoSlot, codeNoSlot, serviceUnavailableWhy},
	{OriginAnySolver, "TASK_NOT_FOUND", codeUnsolvable, codeUnsolvable, "AnySolver's task expired; the client's own taskId is fine"},
	{OriginAnySolver, "TASK_NOT_SUPPORTED", codeTaskNotSupported, codeBadParameters, ""},
	{OriginAnySolver, "TASK_TIMEOUT", codeUnsolvable, codeUnsolvable, ""},
	{OriginAnySolver, "TOKEN_EXPIRED", "ERROR_TOKEN_EXPIRED", "ERROR_TOKEN_EXPIRED", ""},
	{OriginAnySolver, "TRANSFORMATION_ERROR", "", codeUnsolvable, jobFailedWhy},
	{OriginAnySolver, "UNKNOWN_PROVIDER_ERROR", "", codeUnsolvable, jobFailedWhy},
	{OriginAnySolver, "VALIDATION_ERROR", "", codeBadParameters, ""},

	{OriginSolvequeue, "INVALID_PAYLOAD", "", codeBadParameters, "the job in Redis could not be read"},
	{OriginSolvequeue, "JOB_EXPIRED", codeUnsolvable, codeUnsolvable, "the job's deadline passed before any attempt; nothing was paid"},
	{OriginSolvequeue, "RECORD_UNREADABLE", "", codeUnsolvable, jobFailedWhy},
	{OriginSolvequeue, "WORKER_ERROR", "", codeUnsolvable, jobFailedWhy},
	{OriginSolvequeue, "BUDGET_SPENT", CodeZeroBalance, CodeZeroBalance, "the budget of the key's own queue is spent"},
	{OriginSolvequeue, "TIMEOUT", codeNoSlot, codeNoSlot, "AnySolver could not be reached"},
	{OriginSolvequeue, "CONNECTION_ERROR", codeNoSlot, codeNoSlot, "AnySolver could not be reached"},
	{OriginSolvequeue, "HTTP_429", codeNoSlot, codeNoSlot, "AnySolver limits the operator's account, not the client"},
	{OriginSolvequeue, "HTTP_5XX", codeNoSlot, codeNoSlot, "AnySolver could not be reached"},
	{OriginSolvequeue, "HTTP_4XX", "", codeUnsolvable, jobFailedWhy},
	{OriginSolvequeue, "HTTP_UNEXPECTED", "", codeUnsolvable, jobFailedWhy},
	{OriginSolvequeue, "BAD_RESPONSE", "", codeUnsolvable, jobFailedWhy},
	{OriginSolvequeue, "RESPONSE_TOO_LARGE", "", codeUnsolvable, jobFailedWhy},

	{OriginGateway, CodeKeyDoesNotExist, "", CodeKeyDoesNotExist, "the client's gateway key is unknown (2captcha: ERROR_WRONG_USER_KEY when it sent none)"},
	{OriginGateway, CodeZeroBalance, CodeZeroBalance, CodeZeroBalance, "the budget of the key's own queue is spent"},
	{OriginGateway, CodeInvalidTaskData, "", codeBadParameters, ""},
	{OriginGateway, CodeInvalidWebsite, "", "ERROR_PAGEURL", ""},
	{OriginGateway, CodeInvalidSitekey, "ERROR_RECAPTCHA_INVALID_SITEKEY", "ERROR_GOOGLEKEY", ""},
	{OriginGateway, CodeImageCorrupted, codeImageType, "ERROR_UPLOAD", "the body is not base64"},
	{OriginGateway, CodeImageTooLarge, codeTooBig, codeTooBig, "over --max-body"},
	{OriginGateway, CodeTaskNotFound, dialectNoSuchCaptchaID, "ERROR_WRONG_CAPTCHA_ID", ""},
	{OriginGateway, CodeRateLimited, codeNoSlot, codeNoSlot, "the key is over its rateLimit"},
	{OriginGateway, CodeInternalError, "", codeNoSlot, "the gateway cannot reach its Redis; try again"},
	{OriginGateway, CodeNoSuchMethod, "", codeBadParameters, ""},
	{OriginGateway, CodeMethodNotAllowed, "", codeBadParameters, ""},
}

// CodeTable returns every code the gateway can answer, with what each protocol says for it:
// one table for both protocols (a fresh slice, in the order docs/gateway.md shows it).
func CodeTable() []CodeRow {
	return append([]CodeRow(nil), codeTable[:]...)
}

// codeRow finds the row of code from origin.
func codeRow(origin Origin, code string) (CodeRow, bool) {
	for _, r := range codeTable {
		if r.Origin == origin && r.Code == code {
			return r, true
		}
	}
	return CodeRow{}, false
}

// outcomeRow finds the row of an outcome's code: AnySolver's, else solvequeue's own. A code in
// neither (a provider's code AnySolver passed on) answers itself on the createTask protocol and
// ERROR_CAPTCHA_UNSOLVABLE on 2captcha's.
func outcomeRow(code string) CodeRow {
	if r, ok := codeRow(OriginAnySolver, code); ok {
		return r
	}
	if r, ok := codeRow(OriginSolvequeue, code); ok {
		return r
	}
	return CodeRow{Origin: OriginAnySolver, Code: code, TwoCaptcha: codeUnsolvable}
}

// gatewayRow finds the row of a code the gateway answers to a request; an unlisted one answers
// itself on the createTask protocol and ERROR_BAD_PARAMETERS on 2captcha's.
func gatewayRow(code string) CodeRow {
	if r, ok := codeRow(OriginGateway, code); ok {
		return r
	}
	return CodeRow{Origin: OriginGateway, Code: code, TwoCaptcha: codeBadParameters}
}

// dialect returns what the createTask protocol answers for the row: the dialect's code and a
// description that starts with the row's own code when the two differ.
func (r CodeRow) dialect(description string) (code, desc string) {
	if r.Dialect == "" || r.Dialect == r.Code {
		return r.Code, description
	}
	if description == "" {
		return r.Dialect, r.Code
	}
	return r.Dialect, r.Code + ": " + description
}

// CodeTableMarkdown renders CodeTable as the Markdown table docs/gateway.md shows.
func CodeTableMarkdown() string {
	var b strings.Builder
	b.WriteString("| from | code | createTask answers | 2captcha answers | why |\n|---|---|---|---|---|\n")
	for _, r := range codeTable {
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
