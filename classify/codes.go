package classify

import "time"

// Seed codes the rest of solvequeue acts on by name.
const (
	// CodeZeroBalance means the account has no funds.
	CodeZeroBalance = "ERROR_ZERO_BALANCE"
	// CodeKeyDoesNotExist means the API key is wrong or missing.
	CodeKeyDoesNotExist = "ERROR_KEY_DOES_NOT_EXIST"
	// CodeUserBanned means the account is suspended.
	CodeUserBanned = "ERROR_USER_BANNED"
	// CodeBalanceNotSupported means the provider cannot report a balance (getBalance).
	CodeBalanceNotSupported = "PROVIDER_BALANCE_NOT_SUPPORTED"
	// CodeRateLimited means AnySolver itself is rate limiting the account.
	CodeRateLimited = "RATE_LIMITED"
	// CodeTaskNotFound means the remote task expired (results live 5 minutes) or never existed.
	CodeTaskNotFound = "TASK_NOT_FOUND"
)

// Codes synthesized for transport failures, which carry no errorCode of their own.
const (
	// CodeTimeout marks a call that timed out.
	CodeTimeout = "TIMEOUT"
	// CodeConnection marks a connection that failed or was reset.
	CodeConnection = "CONNECTION_ERROR"
	// CodeBadResponse marks a body that is not the JSON the protocol promises, or lacks errorCode.
	CodeBadResponse = "BAD_RESPONSE"
	// CodeResponseTooLarge marks a body over the client's size limit.
	CodeResponseTooLarge = "RESPONSE_TOO_LARGE"
	// CodeHTTP429 marks HTTP 429 Too Many Requests.
	CodeHTTP429 = "HTTP_429"
	// CodeHTTP5xx marks any HTTP 5xx.
	CodeHTTP5xx = "HTTP_5XX"
	// CodeHTTP4xx marks any HTTP 4xx but 429.
	CodeHTTP4xx = "HTTP_4XX"
	// CodeHTTPUnexpected marks an error status outside 4xx and 5xx (a 3xx redirect, say).
	CodeHTTPUnexpected = "HTTP_UNEXPECTED"
)

// Codes solvequeue itself gives to outcomes that AnySolver had no part in. Like AnySolver's own
// they are upper-case words, and an outcome, the dead-letter list and the metrics name them.
const (
	// CodeInvalidPayload marks a task in Redis that is not a solve job the worker can read, or
	// whose image body is gone.
	CodeInvalidPayload = "INVALID_PAYLOAD"
	// CodeJobExpired marks a job whose deadline passed before a task could be created.
	CodeJobExpired = "JOB_EXPIRED"
	// CodeRecordUnreadable marks a job whose record in Redis cannot be decoded: it ends dead
	// rather than risk paying AnySolver twice, with the record as found kept for the operator.
	CodeRecordUnreadable = "RECORD_UNREADABLE"
	// CodeWorkerError marks a job that asynq archived on its own (a handler's panic, say),
	// found and copied into the dead-letter record by the worker's mirror.
	CodeWorkerError = "WORKER_ERROR"
	// CodeBudgetSpent marks a job held because its queue's budget is spent for the window: not
	// paid, not failed, its retry budget untouched. It ends a job only when the job's deadline
	// passes first; a gateway answers it as ERROR_ZERO_BALANCE.
	CodeBudgetSpent = "BUDGET_SPENT"
)

// OwnCodes returns the codes solvequeue itself gives to outcomes, beside AnySolver's and the
// transport codes: a fresh slice.
func OwnCodes() []string {
	return []string{CodeInvalidPayload, CodeJobExpired, CodeRecordUnreadable, CodeWorkerError, CodeBudgetSpent}
}

// rateLimitWait is the floor for RATE_LIMITED and HTTP 429: AnySolver's
// documentation waits 5 s before retrying a rate-limited call.
const rateLimitWait = 5 * time.Second

// seedEntry is one row of AnySolver's error table with solvequeue's default decision.
type seedEntry struct {
	id       int
	code     string
	desc     string // the usual errorDescription AnySolver sends (wire data, may vary)
	decision Decision
	reason   string
}

// seedTable is AnySolver's documented error table (36 codes: 28 with errorId 1,
// 8 with errorId 2), sorted by code. The descriptions are AnySolver's usual wire
// text, kept so fakes can answer realistically; decisions never read them.
var seedTable = [...]seedEntry{
	{1, "CAPTCHA_UNSOLVABLE", "The captcha could not be solved. Check your parameters or try again.", Retry,
		"This attempt could not be solved; another attempt or provider often can."},
	{1, "DOMAIN_BANNED", "This domain is not allowed. Captchas from certain domains are forbidden.", Failed,
		"AnySolver refuses captchas from this domain; no retry changes that."},
	{1, "ERROR_KEY_DOES_NOT_EXIST", "Invalid or missing API key. Check your dashboard for the correct key.", Dead,
		"The API key is wrong or missing; an operator must fix it, and the queues pause meanwhile."},
	{1, "ERROR_USER_BANNED", "Account suspended due to improper API use. Contact support.", Dead,
		"The account is suspended; an operator must contact AnySolver, and the queues pause meanwhile."},
	{1, "ERROR_ZERO_BALANCE", "Insufficient account balance. Top up and retry.", Failed,
		"The account has no funds; the queues pause until the balance is topped up."},
	{1, "IMAGE_CORRUPTED", "Image is corrupted or unsupported format. Use JPG, PNG, or GIF.", Failed,
		"The image cannot be decoded; send a JPG, PNG or GIF."},
	{1, "IMAGE_TOO_LARGE", "Image exceeds size limit. Reduce resolution or compress the file.", Failed,
		"The image is over AnySolver's size limit; shrink it."},
	{1, "IMAGE_TOO_SMALL", "Image is too small (< 100 bytes). Check that the file is valid.", Failed,
		"The image is under 100 bytes, so it cannot be a valid captcha."},
	{2, "INTERNAL_ERROR", "An internal error occurred. Please try again later.", Retry,
		"AnySolver failed on its own side; errorId 2 is safe to retry after a short delay."},
	{1, "INVALID_DOMAIN", "Domain mismatch or not allowed. Ensure domain matches sitekey.", Failed,
		"The domain does not match the sitekey; fix the job."},
	{1, "INVALID_SITEKEY", "Invalid websiteKey. Check the sitekey in the page source.", Failed,
		"The websiteKey is wrong; fix the job."},
	{1, "INVALID_TASK_DATA", "Invalid or missing task parameters. Check request structure.", Failed,
		"The task's parameters are missing or wrong; fix the job."},
	{1, "INVALID_USERAGENT", "Invalid or expired User-Agent. Update to a current browser UA.", Failed,
		"The User-Agent is invalid or outdated; fix the job."},
	{1, "INVALID_WEBSITEURL", "Invalid websiteURL format. Use full URL with http:// or https://.", Failed,
		"The websiteURL is malformed; fix the job."},
	{1, "NO_PROVIDERS_AVAILABLE", "No providers available for this task type. Check task type or provider configuration.", Dead,
		"No provider serves this task type; an operator must fix the provider set-up."},
	{2, "PROVIDER_BALANCE_ERROR", "Provider returned error when fetching balance: {errorDescription}", Retry,
		"The provider failed while AnySolver read its balance; errorId 2 is safe to retry."},
	{1, "PROVIDER_BALANCE_NOT_SUPPORTED", "Provider {provider} does not support balance checking.", Dead,
		"The provider cannot report a balance; a configuration problem for an operator."},
	{2, "PROVIDER_GLOBAL_LIMIT_REACHED", "Provider usage limit reached. See https://docs.anysolver.com/errors/provider-limits for details.", Throttle,
		"The provider's usage limit is reached; wait longer, without spending the retry budget."},
	{2, "PROVIDER_RATE_LIMITED", "Provider rate limit reached. See https://docs.anysolver.com/errors/provider-limits for details.", Throttle,
		"The provider's rate limit is hit; wait, without spending the retry budget."},
	{2, "PROVIDER_RESPONSE_MALFORMED", "Provider response is malformed or missing required fields. Description varies on the cause of the error.", Retry,
		"The provider sent AnySolver a broken answer; errorId 2 is safe to retry."},
	{1, "PROVIDER_TASK_NOT_SUPPORTED", "Provider {provider} does not support task type {taskType}.", Failed,
		"The chosen provider does not solve this task type; choose another provider."},
	{2, "PROVIDER_UNREACHABLE", "Could not connect to the solving provider. Try again later.", Retry,
		"AnySolver could not reach the provider; errorId 2 is safe to retry."},
	{1, "PROXY_AUTH_FAILED", "Proxy authentication failed. Check proxyLogin and proxyPassword.", Failed,
		"The proxy rejected its login; fix the job's proxy credentials."},
	{1, "PROXY_BANNED", "Proxy IP is banned by the target service. Use a different proxy.", Retry,
		"The target banned the proxy's IP; a rotating proxy offers a new IP on retry."},
	{1, "PROXY_CONNECTION_FAILED", "Failed to connect to proxy. Check IP, port, and availability.", Retry,
		"The proxy did not answer; a rotating or recovering proxy makes a retry worthwhile."},
	{1, "PROXY_INCOMPATIBLE", "Proxy is incompatible (transparent, no SSL, or wrong protocol version). Try HTTP instead of SOCKS.", Failed,
		"The proxy's kind or protocol does not suit AnySolver; use another proxy."},
	{1, "PROXY_MISSING", "Proxy required but not provided. Add proxyType, proxyAddress, proxyPort.", Failed,
		"The task type needs a proxy and the job has none."},
	{1, "RATE_LIMITED", "Request rate limit exceeded.", Throttle,
		"AnySolver is rate limiting the account; wait at least 5 s, without spending the retry budget."},
	{1, "SERVICE_UNAVAILABLE", "The provider is temporarily unavailable or out of capacity. Try again later.", Retry,
		"The provider is out of capacity for now; try again later."},
	{1, "TASK_NOT_FOUND", "Task ID not found or expired. Request the result within 5 minutes.", Retry,
		"The remote task expired or vanished (results live 5 minutes); create a new one."},
	{1, "TASK_NOT_SUPPORTED", "The task type is not supported. Check the type parameter.", Failed,
		"AnySolver does not know this task type."},
	{1, "TASK_TIMEOUT", "The task timed out. Try with a different proxy or retry later.", Retry,
		"The solve took too long; a new attempt may succeed."},
	{1, "TOKEN_EXPIRED", "The token or session has expired. Obtain a new token and retry.", Retry,
		"The token or session expired; a new attempt gets a fresh one."},
	{2, "TRANSFORMATION_ERROR", "Failed to transform request.", Retry,
		"AnySolver failed to translate the request for the provider; errorId 2 is safe to retry."},
	{1, "UNKNOWN_PROVIDER_ERROR", "Unknown provider error. This description is not static and varies on the cause of the error.", Dead,
		"The provider failed in a way AnySolver cannot name; an operator should read the description."},
	{2, "VALIDATION_ERROR", "The validation of the request failed. Check if the task schema matches the documentation.", Retry,
		"AnySolver's own validation failed (errorId 2, its side); retry, and check the task schema if it persists."},
}

// synthEntry is a code classify makes up for a transport failure.
type synthEntry struct {
	code     string
	decision Decision
	reason   string
}

// synthTable lists the synthesized transport codes in the order Rules shows them.
var synthTable = [...]synthEntry{
	{CodeTimeout, Retry, "The call to AnySolver timed out; a transient failure."},
	{CodeConnection, Retry, "The connection to AnySolver failed or was reset; a transient failure."},
	{CodeBadResponse, Retry, "AnySolver's answer was not the expected JSON (an HTML error page, a truncated body or a missing errorCode)."},
	{CodeResponseTooLarge, Retry, "AnySolver's answer exceeded the client's size limit; treated as a broken answer."},
	{CodeHTTP429, Throttle, "AnySolver answered HTTP 429 Too Many Requests; wait at least 5 s, without spending the retry budget."},
	{CodeHTTP5xx, Retry, "AnySolver, or a proxy in front of it, answered with an HTTP server error."},
	{CodeHTTP4xx, Dead, "AnySolver refused the request at the HTTP level (wrong URL or credentials); an operator must look."},
	{CodeHTTPUnexpected, Dead, "AnySolver answered with an unexpected HTTP status (a redirect, say: check the base URL); an operator must look."},
}

// accountCodes are about the account, not the job: every job would hit the same wall.
func isAccountCode(code string) bool {
	return code == CodeZeroBalance || code == CodeKeyDoesNotExist || code == CodeUserBanned
}

// builtin maps a canonical code (seed or synthesized) to its default rule.
var builtin = func() map[string]Rule {
	m := make(map[string]Rule, len(seedTable)+len(synthTable))
	for _, s := range seedTable {
		m[s.code] = Rule{ErrorID: s.id, ErrorCode: s.code, Decision: s.decision, Reason: s.reason}
	}
	for _, s := range synthTable {
		m[s.code] = Rule{ErrorCode: s.code, Decision: s.decision, Reason: s.reason}
	}
	return m
}()

// SeedCode is one row of AnySolver's documented error table.
type SeedCode struct {
	ErrorID     int    // 1 (external) or 2 (AnySolver's side, safe to retry)
	ErrorCode   string // machine-readable code
	Description string // the usual errorDescription; AnySolver may send other text
}

// SeedCodes returns AnySolver's 36 documented codes sorted by code, as a fresh copy.
func SeedCodes() []SeedCode {
	out := make([]SeedCode, len(seedTable))
	for i, s := range seedTable {
		out[i] = SeedCode{ErrorID: s.id, ErrorCode: s.code, Description: s.desc}
	}
	return out
}
