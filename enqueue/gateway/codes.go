package gateway

import "github.com/solvequeue/solvequeue/internal/dialect"

// Origin says who gives a code: AnySolver (an outcome's error), solvequeue (an outcome code of
// its own, or a transport failure), or the gateway itself (its answer to a request).
type Origin = dialect.Origin

// The origins of the codes in CodeTable.
const (
	OriginAnySolver  = dialect.OriginAnySolver
	OriginSolvequeue = dialect.OriginSolvequeue
	OriginGateway    = dialect.OriginGateway
)

// CodeRow is one row of CodeTable: a code, who gives it, and what each protocol answers for it.
type CodeRow = dialect.Row

// codeUnsolvable is what 2captcha's protocol answers for a job that ended without a code.
const codeUnsolvable = dialect.Unsolvable

// gatewayRows are the rows of every code the gateway answers to a request.
var gatewayRows = [...]CodeRow{
	row(CodeKeyDoesNotExist, "", CodeKeyDoesNotExist, "the client's gateway key is unknown (2captcha: ERROR_WRONG_USER_KEY when it sent none)"),
	row(CodeZeroBalance, CodeZeroBalance, CodeZeroBalance, "the budget of the key's own queue is spent"),
	row(CodeInvalidTaskData, "", dialect.BadParameters, ""),
	row(CodeInvalidWebsite, "", "ERROR_PAGEURL", ""),
	row(CodeInvalidSitekey, "ERROR_RECAPTCHA_INVALID_SITEKEY", "ERROR_GOOGLEKEY", ""),
	row(CodeImageCorrupted, dialect.ImageType, "ERROR_UPLOAD", "the body is not base64"),
	row(CodeImageTooLarge, dialect.TooBig, dialect.TooBig, "over --max-body"),
	row(CodeTaskNotFound, dialect.NoSuchCaptchaID, "ERROR_WRONG_CAPTCHA_ID", ""),
	row(CodeRateLimited, dialect.NoSlot, dialect.NoSlot, "the key is over its rateLimit"),
	row(CodeNoSlotAvailable, "", dialect.NoSlot, "the key is at one of its quotas: maxJobsInFlight, maxJobsWaiting or maxImageBytesWaiting"),
	row(CodeInternalError, "", dialect.NoSlot, "the gateway cannot reach its Redis; try again"),
	row(CodeNoSuchMethod, "", dialect.BadParameters, ""),
	row(CodeMethodNotAllowed, "", dialect.BadParameters, ""),
	row(CodeCrossOrigin, "", CodeCrossOrigin, "a web page's request (HTTP 403): the gateway serves programs, not browsers"),
	row(CodeHostNotAllowed, "", CodeHostNotAllowed, "HTTP 403: without --keys only a loopback Host is answered (DNS rebinding)"),
	row(CodeTooManyWrongKeys, "ERROR_IP_BLOCKED", "ERROR_IP_BANNED", "the client's address sent too many wrong keys: it waits before any key of it is checked"),
}

// row is one of the gateway's rows.
func row(code, dialectCode, twoCaptcha, why string) CodeRow {
	return CodeRow{Origin: OriginGateway, Code: code, Dialect: dialectCode, TwoCaptcha: twoCaptcha, Why: why}
}

// CodeTable returns every code the gateway can answer, with what each protocol says for it:
// one table for both protocols (a fresh slice, in the order docs/gateway.md shows it): the
// outcome codes' rows (package dialect), then the gateway's own.
func CodeTable() []CodeRow {
	return append(dialect.Rows(), gatewayRows[:]...)
}

// CodeTableMarkdown renders CodeTable as the Markdown table docs/gateway.md shows.
func CodeTableMarkdown() string { return dialect.Markdown(CodeTable()) }

// codeRow is a row as the protocols read it: TwoCaptcha for 2captcha's answer, dialect for the
// createTask protocol's.
type codeRow struct{ CodeRow }

// dialect returns what the createTask protocol answers for the row (see dialect.Row.Answer).
func (r codeRow) dialect(description string) (code, desc string) { return r.Answer(description) }

// outcomeRow finds the row of an outcome's code (see dialect.Outcome).
func outcomeRow(code string) codeRow { return codeRow{dialect.Outcome(code)} }

// gatewayRow finds the row of a code the gateway answers to a request; an unlisted one answers
// itself on the createTask protocol and ERROR_BAD_PARAMETERS on 2captcha's.
func gatewayRow(code string) codeRow {
	for _, r := range gatewayRows {
		if r.Code == code {
			return codeRow{r}
		}
	}
	return codeRow{CodeRow{Origin: OriginGateway, Code: code, TwoCaptcha: dialect.BadParameters}}
}
