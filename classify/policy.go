package classify

import (
	"fmt"
	"io"
	"os"
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

// Bounds a policy file must stay within.
const (
	maxRetriesLimit = MaxRetriesLimit
	minBaseDelay    = 100 * time.Millisecond
	maxBaseDelay    = time.Minute
	maxMaxDelay     = 24 * time.Hour
	minMinWait      = time.Second
	maxMinWait      = 10 * time.Minute
	maxMaxWait      = time.Hour
	maxPolicyBytes  = 1 << 20
)

// Policy is a classification table plus the retry and throttle delays.
//
// Default gives the table of solvequeue's design; Parse and Load apply a policy
// file's overrides on top of it. A Policy is immutable and safe for concurrent
// use. A nil *Policy and the zero Policy behave as Default().
type Policy struct {
	name       string
	maxRetries int
	baseDelay  time.Duration
	maxDelay   time.Duration
	minWait    time.Duration
	maxWait    time.Duration
	codes      map[string]Rule // overrides by canonical code
	queues     map[string]QueuePolicy
}

// Rule is one row of the effective classification table.
type Rule struct {
	ErrorID   int      `json:"errorId"`
	ErrorCode string   `json:"errorCode"`
	Decision  Decision `json:"decision"`
	Reason    string   `json:"reason"`
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

// ParseError is a policy file the parser refused, with the line at fault.
type ParseError struct {
	File string // the name given to Parse, or Load's path
	Line int    // 1-based; 0 when the fault has no line
	Msg  string
}

// Error returns "file: line N: message", or "file: message" without a line.
func (e *ParseError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

// Load reads a policy file and parses it; see Parse.
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read policy: %w", err)
	}
	return Parse(path, data)
}

// Parse reads a policy file (YAML, or JSON, which is YAML) over Default():
//
//	retry:                  # the retry decision's budget and backoff
//	  maxRetries: 10        # 1..100
//	  baseDelay: 2s         # 100ms..1m; AnySolver advises 1s..5s
//	  maxDelay: 2m          # baseDelay..24h
//	throttle:
//	  minWait: 5s           # 1s..10m; RATE_LIMITED and HTTP 429 wait at least 5s anyway
//	  maxWait: 1m           # minWait..1h
//	codes:
//	  CAPTCHA_UNSOLVABLE: failed                                  # short form
//	  MY_NEW_CODE: {decision: retry, reason: "why", errorId: 2}   # long form
//
// codes may also be a list of {errorCode, decision, reason, errorId}, the shape
// of Rules as JSON, so an exported table reads back. Any code may be set: a seed
// code, a new one, or a synthesized transport code. Parse refuses unknown keys,
// unknown decisions, codes that are not UPPER_SNAKE, a code set twice, budgets
// below 1, bad or out-of-range durations and errorIds that contradict AnySolver's
// table, with a *ParseError naming the file (name) and line. It never panics.
func Parse(name string, data []byte) (*Policy, error) {
	if name == "" {
		name = "policy"
	}
	if len(data) > maxPolicyBytes {
		return nil, &ParseError{File: name, Msg: fmt.Sprintf("a policy file must stay under %d bytes", maxPolicyBytes)}
	}
	root, err := decodeYAML(name, data)
	if err != nil {
		return nil, err
	}
	p := Default()
	p.name = name
	if root != nil {
		ps := &parser{name: name, p: p}
		if err := ps.policy(root); err != nil {
			return nil, err
		}
	}
	return p, nil
}
