package classify_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

// seedRow is one row of AnySolver's error table, typed in by hand from
// AnySolver's error-handling page, with the decision solvequeue's design gives it.
type seedRow struct {
	id       int
	code     string
	decision classify.Decision
}

// handSeed is deliberately not derived from the package: it is the reference.
var handSeed = []seedRow{
	{1, "CAPTCHA_UNSOLVABLE", classify.Retry},
	{1, "DOMAIN_BANNED", classify.Failed},
	{1, "ERROR_KEY_DOES_NOT_EXIST", classify.Dead},
	{1, "ERROR_USER_BANNED", classify.Dead},
	{1, "ERROR_ZERO_BALANCE", classify.Failed},
	{1, "IMAGE_CORRUPTED", classify.Failed},
	{1, "IMAGE_TOO_LARGE", classify.Failed},
	{1, "IMAGE_TOO_SMALL", classify.Failed},
	{2, "INTERNAL_ERROR", classify.Retry},
	{1, "INVALID_DOMAIN", classify.Failed},
	{1, "INVALID_SITEKEY", classify.Failed},
	{1, "INVALID_TASK_DATA", classify.Failed},
	{1, "INVALID_USERAGENT", classify.Failed},
	{1, "INVALID_WEBSITEURL", classify.Failed},
	{1, "NO_PROVIDERS_AVAILABLE", classify.Dead},
	{2, "PROVIDER_BALANCE_ERROR", classify.Retry},
	{1, "PROVIDER_BALANCE_NOT_SUPPORTED", classify.Dead},
	{2, "PROVIDER_GLOBAL_LIMIT_REACHED", classify.Throttle},
	{2, "PROVIDER_RATE_LIMITED", classify.Throttle},
	{2, "PROVIDER_RESPONSE_MALFORMED", classify.Retry},
	{1, "PROVIDER_TASK_NOT_SUPPORTED", classify.Failed},
	{2, "PROVIDER_UNREACHABLE", classify.Retry},
	{1, "PROXY_AUTH_FAILED", classify.Failed},
	{1, "PROXY_BANNED", classify.Retry},
	{1, "PROXY_CONNECTION_FAILED", classify.Retry},
	{1, "PROXY_INCOMPATIBLE", classify.Failed},
	{1, "PROXY_MISSING", classify.Failed},
	{1, "RATE_LIMITED", classify.Throttle},
	{1, "SERVICE_UNAVAILABLE", classify.Retry},
	{1, "TASK_NOT_FOUND", classify.Retry},
	{1, "TASK_NOT_SUPPORTED", classify.Failed},
	{1, "TASK_TIMEOUT", classify.Retry},
	{1, "TOKEN_EXPIRED", classify.Retry},
	{2, "TRANSFORMATION_ERROR", classify.Retry},
	{1, "UNKNOWN_PROVIDER_ERROR", classify.Dead},
	{2, "VALIDATION_ERROR", classify.Retry},
}

var accountCodes = map[string]bool{
	"ERROR_ZERO_BALANCE":       true,
	"ERROR_KEY_DOES_NOT_EXIST": true,
	"ERROR_USER_BANNED":        true,
}

func TestSeedCodes(t *testing.T) {
	t.Parallel()

	got := classify.SeedCodes()
	require.Len(t, got, 36)
	require.Len(t, handSeed, 36)
	byID := map[int]int{}
	for i, s := range got {
		byID[s.ErrorID]++
		require.Equal(t, handSeed[i].code, s.ErrorCode, "row %d", i)
		require.Equal(t, handSeed[i].id, s.ErrorID, s.ErrorCode)
		require.NotEmpty(t, s.Description, s.ErrorCode)
	}
	require.Equal(t, map[int]int{1: 28, 2: 8}, byID)

	// A fresh copy each call: changing one cannot change the next.
	got[0].ErrorCode = "CHANGED"
	require.Equal(t, "CAPTCHA_UNSOLVABLE", classify.SeedCodes()[0].ErrorCode)
}

func TestClassifySeed(t *testing.T) {
	t.Parallel()

	p := classify.Default()
	counts := map[classify.Decision]int{}
	for _, row := range handSeed {
		t.Run(row.code, func(t *testing.T) {
			t.Parallel()
			for _, id := range []int{row.id, 0, 1, 2, 7, -1} { // a seed code keeps its decision whatever errorId says
				v := p.Classify(classify.Error{Call: classify.CallCreateTask, ErrorID: id, ErrorCode: row.code})
				require.Equal(t, row.decision, v.Decision, "errorId %d", id)
				require.Equal(t, row.code, v.Code)
				require.NotEmpty(t, v.Reason)
				require.Equal(t, accountCodes[row.code], v.Account)
				if row.decision == classify.Throttle {
					require.GreaterOrEqual(t, v.Wait, 5*time.Second)
				} else {
					require.Zero(t, v.Wait)
				}
			}
		})
		counts[row.decision]++
	}
	require.Equal(t, map[classify.Decision]int{classify.Retry: 13, classify.Throttle: 3, classify.Failed: 15, classify.Dead: 5}, counts)
}

func TestClassifyCodes(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		in       classify.Error
		code     string
		decision classify.Decision
		wait     time.Duration
	}{
		{"unknown errorId 1", classify.Error{ErrorID: 1, ErrorCode: "BRAND_NEW"}, "BRAND_NEW", classify.Dead, 0},
		{"unknown errorId 2", classify.Error{ErrorID: 2, ErrorCode: "BRAND_NEW"}, "BRAND_NEW", classify.Retry, 0},
		{"unknown errorId 0", classify.Error{ErrorID: 0, ErrorCode: "BRAND_NEW"}, "BRAND_NEW", classify.Dead, 0},
		{"unknown errorId 7", classify.Error{ErrorID: 7, ErrorCode: "BRAND_NEW"}, "BRAND_NEW", classify.Dead, 0},
		{"unknown errorId -1", classify.Error{ErrorID: -1, ErrorCode: "BRAND_NEW"}, "BRAND_NEW", classify.Dead, 0},
		{"spaces and case", classify.Error{ErrorID: 1, ErrorCode: "  rate_Limited\n"}, "RATE_LIMITED", classify.Throttle, 5 * time.Second},
		{"lower-case unknown", classify.Error{ErrorID: 2, ErrorCode: "brand_new"}, "BRAND_NEW", classify.Retry, 0},
		{"provider rate limit", classify.Error{ErrorID: 2, ErrorCode: "PROVIDER_RATE_LIMITED"}, "PROVIDER_RATE_LIMITED", classify.Throttle, 10 * time.Second},
		{"provider global limit", classify.Error{ErrorID: 2, ErrorCode: "PROVIDER_GLOBAL_LIMIT_REACHED"}, "PROVIDER_GLOBAL_LIMIT_REACHED", classify.Throttle, 10 * time.Second},
		// Transport failures.
		{"timeout", classify.Error{Failure: classify.FailureTimeout}, classify.CodeTimeout, classify.Retry, 0},
		{"connection", classify.Error{Failure: classify.FailureConnection}, classify.CodeConnection, classify.Retry, 0},
		{"bad body", classify.Error{Failure: classify.FailureBadBody, HTTPStatus: 200}, classify.CodeBadResponse, classify.Retry, 0},
		{"oversized body", classify.Error{Failure: classify.FailureOversizedBody}, classify.CodeResponseTooLarge, classify.Retry, 0},
		{"http 429", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 429}, classify.CodeHTTP429, classify.Throttle, 5 * time.Second},
		{"http 500", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 500}, classify.CodeHTTP5xx, classify.Retry, 0},
		{"http 502", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 502}, classify.CodeHTTP5xx, classify.Retry, 0},
		{"http 503", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 503}, classify.CodeHTTP5xx, classify.Retry, 0},
		{"http 404", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 404}, classify.CodeHTTP4xx, classify.Dead, 0},
		{"http 401", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 401}, classify.CodeHTTP4xx, classify.Dead, 0},
		{"http 403", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 403}, classify.CodeHTTP4xx, classify.Dead, 0},
		{"http 302", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 302}, classify.CodeHTTPUnexpected, classify.Dead, 0},
		{"status without failure kind", classify.Error{HTTPStatus: 502}, classify.CodeHTTP5xx, classify.Retry, 0},
		{"http error with a JSON code", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 402, ErrorID: 1, ErrorCode: "ERROR_ZERO_BALANCE"}, "ERROR_ZERO_BALANCE", classify.Failed, 0},
		{"429 with a JSON code", classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 429, ErrorID: 1, ErrorCode: "RATE_LIMITED"}, "RATE_LIMITED", classify.Throttle, 5 * time.Second},
		{"error answer without a code", classify.Error{ErrorID: 1}, classify.CodeBadResponse, classify.Retry, 0},
		{"blank code", classify.Error{ErrorID: 2, ErrorCode: "   "}, classify.CodeBadResponse, classify.Retry, 0},
		{"unknown failure kind", classify.Error{Failure: "tls"}, classify.CodeConnection, classify.Retry, 0},
		{"unknown failure kind with status", classify.Error{Failure: "tls", HTTPStatus: 503}, classify.CodeHTTP5xx, classify.Retry, 0},
	}
	p := classify.Default()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := p.Classify(tt.in)
			require.Equal(t, tt.code, v.Code)
			require.Equal(t, tt.decision, v.Decision)
			require.Equal(t, tt.wait, v.Wait)
			require.NotEmpty(t, v.Reason)
		})
	}
}

func TestClassifyIgnoresDescription(t *testing.T) {
	t.Parallel()

	descriptions := []string{
		"",
		"Request rate limit exceeded.",
		"Insufficient account balance. Top up and retry.",
		"Provider CapSolver says: ERROR_KEY_DOES_NOT_EXIST, try again later",
		"暂时无法处理",
	}
	p := classify.Default()
	codes := []string{"BRAND_NEW"}
	for _, row := range handSeed {
		codes = append(codes, row.code)
	}
	for _, code := range codes {
		for _, id := range []int{1, 2} {
			want := p.Classify(classify.Error{ErrorID: id, ErrorCode: code})
			for _, d := range descriptions {
				got := p.Classify(classify.Error{ErrorID: id, ErrorCode: code, ErrorDescription: d})
				require.Equal(t, want, got, "%s errorId %d description %q", code, id, d)
			}
		}
	}
}

func TestClassifyAccount(t *testing.T) {
	t.Parallel()

	// Account follows the code even when a policy changes the decision.
	p, err := classify.New(classify.Settings{Name: "account", Codes: []classify.Rule{
		{ErrorCode: "ERROR_ZERO_BALANCE", Decision: classify.Dead}, {ErrorCode: "ERROR_USER_BANNED", Decision: classify.Retry}}})
	require.NoError(t, err)
	for _, pol := range []*classify.Policy{classify.Default(), p} {
		for _, row := range handSeed {
			v := pol.Classify(classify.Error{ErrorID: row.id, ErrorCode: row.code})
			require.Equal(t, accountCodes[row.code], v.Account, "%s under %s", row.code, pol.Name())
		}
	}
	require.Equal(t, classify.Dead, p.Classify(classify.Error{ErrorCode: "ERROR_ZERO_BALANCE"}).Decision)
	require.False(t, p.Classify(classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 401}).Account)
}

func TestNilAndZeroPolicy(t *testing.T) {
	t.Parallel()

	def := classify.Default()
	for _, p := range []*classify.Policy{nil, new(classify.Policy)} {
		for _, row := range handSeed {
			e := classify.Error{ErrorID: row.id, ErrorCode: row.code}
			require.Equal(t, def.Classify(e), p.Classify(e))
		}
		require.Equal(t, def.Rules(), p.Rules())
		require.Equal(t, def.MaxRetries(), p.MaxRetries())
		require.Equal(t, def.RetryDelay(3, 0.5), p.RetryDelay(3, 0.5))
		require.Equal(t, "default", p.Name())
	}
}

func TestRulesDefault(t *testing.T) {
	t.Parallel()

	rules := classify.Default().Rules()
	require.Len(t, rules, 36+8)
	for i, row := range handSeed {
		require.Equal(t, classify.Rule{ErrorID: row.id, ErrorCode: row.code, Decision: row.decision, Reason: rules[i].Reason}, rules[i])
		require.NotEmpty(t, rules[i].Reason)
	}
	synth := map[string]classify.Decision{}
	for _, r := range rules[36:] {
		require.Zero(t, r.ErrorID)
		synth[r.ErrorCode] = r.Decision
	}
	require.Equal(t, map[string]classify.Decision{
		classify.CodeTimeout:          classify.Retry,
		classify.CodeConnection:       classify.Retry,
		classify.CodeBadResponse:      classify.Retry,
		classify.CodeResponseTooLarge: classify.Retry,
		classify.CodeHTTP429:          classify.Throttle,
		classify.CodeHTTP5xx:          classify.Retry,
		classify.CodeHTTP4xx:          classify.Dead,
		classify.CodeHTTPUnexpected:   classify.Dead,
	}, synth)
}

func TestParseDecision(t *testing.T) {
	t.Parallel()

	for in, want := range map[string]classify.Decision{"retry": classify.Retry, " Throttle ": classify.Throttle, "FAILED": classify.Failed, "dead": classify.Dead} {
		got, err := classify.ParseDecision(in)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	for _, in := range []string{"", "retri", "archive", "skip"} {
		_, err := classify.ParseDecision(in)
		require.ErrorContains(t, err, fmt.Sprintf("unknown decision %q (want retry, throttle, failed or dead)", in))
	}
}

func BenchmarkClassify(b *testing.B) {
	p := classify.Default()
	e := classify.Error{Call: classify.CallGetTaskResult, ErrorID: 1, ErrorCode: "CAPTCHA_UNSOLVABLE", ErrorDescription: "The captcha could not be solved."}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Classify(e)
	}
}

func BenchmarkClassifyUnknown(b *testing.B) {
	p := classify.Default()
	e := classify.Error{Call: classify.CallCreateTask, ErrorID: 1, ErrorCode: " some_new_code ", ErrorDescription: "varies"}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Classify(e)
	}
}

func TestIsTransportCode(t *testing.T) {
	t.Parallel()
	for _, code := range []string{classify.CodeTimeout, classify.CodeConnection, classify.CodeBadResponse, classify.CodeResponseTooLarge, classify.CodeHTTP429, classify.CodeHTTP5xx, classify.CodeHTTP4xx, classify.CodeHTTPUnexpected} {
		require.True(t, classify.IsTransportCode(code), code)
	}
	for _, s := range classify.SeedCodes() {
		require.False(t, classify.IsTransportCode(s.ErrorCode), s.ErrorCode)
	}
}
