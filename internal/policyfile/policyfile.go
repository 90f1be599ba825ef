// Package policyfile reads solvequeue's policy file: the classification's retry, throttle and
// code changes, which it hands to classify.New, and each queue's budget and provider list, which
// classify knows nothing of. The worker, the gateway and the console read one *Policy.
package policyfile

import (
	"fmt"
	"maps"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/yamlfile"
)

// maxFileBytes bounds what Load reads and Parse accepts.
const maxFileBytes = 1 << 20

// Policy is a read policy file: a classification and what it says of each queue. It is
// immutable and safe for concurrent use; a nil *Policy is Default().
type Policy struct {
	classification *classify.Policy
	queues         map[string]QueuePolicy
}

// Default returns classify's default classification and no queue budgets or provider lists.
func Default() *Policy { return &Policy{classification: classify.Default()} }

// Classification returns the policy's classification table and delays.
func (p *Policy) Classification() *classify.Policy {
	if p == nil || p.classification == nil {
		return classify.Default()
	}
	return p.classification
}

// Name returns the name the policy was read under (the file's path), or "default".
func (p *Policy) Name() string { return p.Classification().Name() }

// Queue returns what the policy says of a queue; the zero QueuePolicy when nothing.
func (p *Policy) Queue(name string) QueuePolicy {
	if p == nil {
		return QueuePolicy{}
	}
	return p.queues[name]
}

// Queues returns a copy of every queue the policy names, by name.
func (p *Policy) Queues() map[string]QueuePolicy {
	if p == nil {
		return nil
	}
	return maps.Clone(p.queues)
}

// Load reads a policy file and parses it; see Parse.
func Load(path string) (*Policy, error) {
	data, err := yamlfile.ReadFile(path, maxFileBytes)
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
//	  CAPTCHA_UNSOLVABLE: failed                                                # short form
//	  MY_NEW_CODE: {decision: retry, reason: "why", errorId: 2, custom: true}   # long form
//	queues:
//	  scrapers:
//	    budget: {window: 24h, maxCost: 20.00, maxCreateTasks: 5000, estimatedCost: 0.002}
//	    providers: [CapSolver, CapMonster]
//
// codes may also be a list of {errorCode, decision, reason, errorId, custom}, the shape of
// classify's Rules as JSON, so an exported table reads back. A code may be one of AnySolver's, a
// transport code or one of classify.OwnCodes; any other code must be marked custom: true, and
// is otherwise refused with the nearest known code ("did you mean CAPTCHA_UNSOLVABLE?"). Parse
// refuses unknown keys, unknown decisions, codes that are not UPPER_SNAKE, a code set twice,
// budgets below 1, bad or out-of-range durations and amounts, and errorIds that contradict
// AnySolver's table, with a *yamlfile.Error naming the file (name) and line. It never panics.
func Parse(name string, data []byte) (*Policy, error) {
	if name == "" {
		name = "policy"
	}
	root, err := yamlfile.Decode(name, "policy file", data, maxFileBytes)
	if err != nil {
		return nil, err
	}
	ps := &parser{name: name, settings: classify.Settings{Name: name}}
	if root != nil {
		if err := ps.policy(root); err != nil {
			return nil, err
		}
	}
	c, err := classify.New(ps.settings)
	if err != nil {
		// The parser checks every setting with its line first; this is a bound it missed.
		return nil, &yamlfile.Error{File: name, Msg: err.Error()}
	}
	return &Policy{classification: c, queues: ps.queues}, nil
}
