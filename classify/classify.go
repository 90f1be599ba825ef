// Package classify owns the decision for a failed attempt: it maps an AnySolver
// error answer or a transport failure to retry, throttle, failed or dead, and
// computes the retry and throttle delays. It does no I/O and knows nothing of
// queues, Redis, HTTP or the policy file, whose reader builds a Policy with New.
package classify

import (
	"fmt"
	"strings"
	"time"
)

// Decision is what happens to a job after a failed attempt.
type Decision string

// The four decisions.
const (
	// Retry tries again with exponential backoff, spending the retry budget.
	Retry Decision = "retry"
	// Throttle tries again after a wait without spending the retry budget.
	Throttle Decision = "throttle"
	// Failed ends the job for good: as submitted it can never succeed.
	Failed Decision = "failed"
	// Dead sends the job to the dead-letter queue for an operator.
	Dead Decision = "dead"
)

// ParseDecision parses a decision name, ignoring case and surrounding spaces.
func ParseDecision(s string) (Decision, error) {
	switch d := Decision(strings.ToLower(strings.TrimSpace(s))); d {
	case Retry, Throttle, Failed, Dead:
		return d, nil
	}
	return "", fmt.Errorf("unknown decision %q (want retry, throttle, failed or dead)", s)
}

// Call names the AnySolver method that failed.
type Call string

// The AnySolver methods.
const (
	// CallCreateTask creates a remote task (paid).
	CallCreateTask Call = "createTask"
	// CallGetTaskResult polls a remote task.
	CallGetTaskResult Call = "getTaskResult"
	// CallGetBalance reads the account balance.
	CallGetBalance Call = "getBalance"
)

// Failure is a transport-level failure kind; FailureNone for an AnySolver error answer.
type Failure string

// The transport failure kinds.
const (
	// FailureNone means AnySolver answered with an error in its JSON.
	FailureNone Failure = ""
	// FailureTimeout means the call timed out.
	FailureTimeout Failure = "timeout"
	// FailureConnection means the connection failed or was reset.
	FailureConnection Failure = "connection"
	// FailureHTTPStatus means a non-2xx status; Error.HTTPStatus holds it.
	FailureHTTPStatus Failure = "http_status"
	// FailureBadBody means the body was not the JSON the protocol promises.
	FailureBadBody Failure = "bad_body"
	// FailureOversizedBody means the body exceeded the client's size limit.
	FailureOversizedBody Failure = "oversized_body"
)

// Error is the classifier's input: an AnySolver error answer or a transport failure.
//
// A non-empty ErrorCode always wins, even alongside a Failure or an HTTP status
// (an HTTP error whose body still carried AnySolver's JSON). Without one, the
// Failure kind and HTTPStatus pick a synthesized code (CodeTimeout and friends).
// ErrorDescription and Call are carried for people; no decision reads them.
type Error struct {
	Call             Call
	ErrorID          int
	ErrorCode        string
	ErrorDescription string
	Failure          Failure
	HTTPStatus       int
}

// Verdict is the classifier's output.
type Verdict struct {
	Decision Decision
	Code     string        // the canonical errorCode, or a synthesized code for transport failures
	Reason   string        // one sentence for people
	Account  bool          // the error is about the account (zero balance, bad key, banned), not the job
	Wait     time.Duration // throttle only: the minimum wait before the next try (>= 5s for RATE_LIMITED)
}

// Reasons for codes outside AnySolver's table.
const (
	reasonUnknownRetry = "The code is not in AnySolver's table, but errorId 2 marks AnySolver's side: safe to retry."
	reasonUnknownDead  = "The code is not in AnySolver's table and its errorId does not say it is transient; an operator must look."
)

// Classify decides what a failed attempt means for its job.
//
// The decision reads the error code only (trimmed, any case), never the
// description. A code in AnySolver's table keeps its decision whatever errorId
// came with it; an unknown code is retried with errorId 2 and dead-lettered
// otherwise. The policy's overrides come first. Account is set for the account
// codes whatever the policy decides.
func (p *Policy) Classify(e Error) Verdict {
	p = p.orDefault()
	code := canonicalCode(e.ErrorCode)
	if code == "" {
		code = transportCode(e)
	}
	v := Verdict{Code: code, Account: isAccountCode(code)}
	if o, ok := p.codes[code]; ok {
		v.Decision, v.Reason = o.Decision, o.Reason
	} else if r, ok := builtin[code]; ok {
		v.Decision, v.Reason = r.Decision, r.Reason
	} else if e.ErrorID == 2 {
		v.Decision, v.Reason = Retry, reasonUnknownRetry
	} else {
		v.Decision, v.Reason = Dead, reasonUnknownDead
	}
	if v.Decision == Throttle {
		v.Wait = p.throttleWait(code)
	}
	return v
}

// canonicalCode trims s and upper-cases it, without allocating when it is already canonical.
func canonicalCode(s string) string {
	s = strings.TrimSpace(s)
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'a' && c <= 'z' || c >= 0x80 {
			return strings.ToUpper(s)
		}
	}
	return s
}

// transportCode synthesizes a code for an error without an errorCode.
func transportCode(e Error) string {
	switch e.Failure {
	case FailureTimeout:
		return CodeTimeout
	case FailureConnection:
		return CodeConnection
	case FailureBadBody:
		return CodeBadResponse
	case FailureOversizedBody:
		return CodeResponseTooLarge
	case FailureHTTPStatus:
		return httpCode(e.HTTPStatus)
	case FailureNone:
		if e.HTTPStatus != 0 && (e.HTTPStatus < 200 || e.HTTPStatus > 299) {
			return httpCode(e.HTTPStatus)
		}
		// An error answer without an errorCode breaks the protocol.
		return CodeBadResponse
	}
	// A failure kind this package does not know yet: trust the status if any,
	// otherwise treat it as a broken connection, which is retried.
	if e.HTTPStatus != 0 {
		return httpCode(e.HTTPStatus)
	}
	return CodeConnection
}

func httpCode(status int) string {
	switch {
	case status == 429:
		return CodeHTTP429
	case status >= 500 && status <= 599:
		return CodeHTTP5xx
	case status >= 400 && status <= 499:
		return CodeHTTP4xx
	}
	return CodeHTTPUnexpected
}

// throttleWait is the minimum wait for a throttled code: the policy's minimum,
// raised to 5 s for AnySolver's rate limit and HTTP 429 (AnySolver's
// documentation waits 5 s) and to the provider wait for the provider limits,
// which reset on the provider's clock rather than AnySolver's.
func (p *Policy) throttleWait(code string) time.Duration {
	w := p.minWait
	switch code {
	case CodeRateLimited, CodeHTTP429:
		w = max(w, rateLimitWait)
	case "PROVIDER_RATE_LIMITED", "PROVIDER_GLOBAL_LIMIT_REACHED":
		w = max(w, ProviderWaitDefault)
	}
	return w
}
