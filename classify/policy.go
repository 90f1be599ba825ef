package classify

import (
	"slices"
	"strings"
	"time"
)

// Defaults of a Policy, which a policy file may change.
const (
	// MaxRetriesDefault is the retry budget of the retry decision.
	MaxRetriesDefault = 10
	// BaseDelayDefault is the first retry's delay before jitter (AnySolver advises 1-5 s).
	BaseDelayDefault = 2 * time.Second
	// MaxDelayDefault caps the exponential retry delay.
	MaxDelayDefault = 2 * time.Minute
	// MinWaitDefault is the least wait of a throttle, and RATE_LIMITED's and HTTP 429's.
	MinWaitDefault = 5 * time.Second
	// ProviderWaitDefault is the least wait for PROVIDER_RATE_LIMITED and
	// PROVIDER_GLOBAL_LIMIT_REACHED: a provider's limit resets on the provider's
	// clock, so asking AnySolver again after 5 s mostly meets the same limit.
	ProviderWaitDefault = 10 * time.Second
	// MaxWaitDefault caps a throttle's wait, jitter included.
	MaxWaitDefault = time.Minute
)

// MaxRetriesLimit is the largest retry budget a policy or a job may give: enqueue tells asynq one
// more than this (jobwire.AsynqMaxRetryDefault), so that asynq never reaches its own retry limit,
// where it would archive a job by itself, before the worker's decision does.
const MaxRetriesLimit = 100

// Policy is a classification table plus the retry and throttle delays.
//
// Default gives the table of solvequeue's design; New applies changes on top of it
// (a policy file's reader builds its Policy with New). A Policy is immutable and safe for concurrent
// use. A nil *Policy and the zero Policy behave as Default().
type Policy struct {
	name       string
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	minWait    time.Duration
	maxWait    time.Duration
	codes      map[string]Rule // overrides by canonical code
}

// Rule is one row of the effective classification table.
type Rule struct {
	ErrorID   int      `json:"errorId"`
	ErrorCode string   `json:"errorCode"`
	Decision  Decision `json:"decision"`
	Reason    string   `json:"reason"`
	// Custom marks a code of the policy's own, outside AnySolver's table, the transport codes
	// and OwnCodes (see CheckCode).
	Custom bool `json:"custom,omitempty"`
}

// Default returns the classification of solvequeue's design with default delays.
func Default() *Policy {
	return &Policy{
		name:       "default",
		maxRetries: MaxRetriesDefault,
		baseDelay:  BaseDelayDefault,
		maxDelay:   MaxDelayDefault,
		minWait:    MinWaitDefault,
		maxWait:    MaxWaitDefault,
	}
}

var defaultPolicy = Default()

// orDefault stands Default() in for a nil or zero Policy.
func (p *Policy) orDefault() *Policy {
	if p == nil || p.maxRetries == 0 {
		return defaultPolicy
	}
	return p
}

// Name returns the name the policy was parsed under, or "default".
func (p *Policy) Name() string { return p.orDefault().name }

// MaxRetries returns the retry budget of the retry decision. Throttles do not spend it.
func (p *Policy) MaxRetries() int { return p.orDefault().maxRetries }

// RetryBudget is the retries a job may spend: its own maxRetries (own, nil for none) or the
// policy's, and one fewer than asynq's MaxRetry when that is known (asynqMaxRetry > 0) and
// lower, because asynq archives a task whose retries reached its MaxRetry by itself, behind the
// worker's back; the worker ends the job one retry before. Throttles and holds spend none.
func (p *Policy) RetryBudget(own *int, asynqMaxRetry int) int {
	b := p.MaxRetries()
	if own != nil {
		b = *own
	}
	if asynqMaxRetry > 0 {
		b = min(b, asynqMaxRetry-1)
	}
	return max(b, 0)
}

// Rules returns the effective table: every seed code sorted by code, then the
// codes the policy added sorted by code, then the synthesized transport codes.
// Codes outside the table are dead-lettered, or retried when their errorId is 2.
func (p *Policy) Rules() []Rule {
	p = p.orDefault()
	out := make([]Rule, 0, len(seedTable)+len(p.codes)+len(synthTable))
	for _, s := range seedTable {
		out = append(out, p.rule(s.code))
	}
	slices.SortFunc(out, func(a, b Rule) int { return strings.Compare(a.ErrorCode, b.ErrorCode) })
	var added []string
	for code := range p.codes {
		if _, ok := builtin[code]; !ok {
			added = append(added, code)
		}
	}
	slices.Sort(added)
	for _, code := range added {
		out = append(out, p.codes[code])
	}
	for _, s := range synthTable {
		out = append(out, p.rule(s.code))
	}
	return out
}

// IsTransportCode reports whether code is one solvequeue synthesizes for a transport failure
// (TIMEOUT, HTTP_5XX, ...) rather than one AnySolver sends.
func IsTransportCode(code string) bool {
	for _, s := range synthTable {
		if s.code == code {
			return true
		}
	}
	return false
}

func (p *Policy) rule(code string) Rule {
	if r, ok := p.codes[code]; ok {
		return r
	}
	return builtin[code]
}
