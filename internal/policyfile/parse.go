package policyfile

import (
	"fmt"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/yamlfile"
)

// parser walks a policy file's nodes into classify.Settings and queue policies.
type parser struct {
	name     string
	settings classify.Settings
	queues   map[string]QueuePolicy
	seen     map[string]int // code -> line it was set on
}

func (ps *parser) fail(n *yaml.Node, format string, args ...any) error {
	return yamlfile.Errorf(ps.name, n, format, args...)
}

// each calls fn for every key and value of mapping n; an empty value is an empty mapping.
func (ps *parser) each(n *yaml.Node, what string, fn func(k, v *yaml.Node) error) error {
	if yamlfile.IsNull(yamlfile.Deref(n)) {
		return nil
	}
	return yamlfile.Each(ps.name, n, what, fn)
}

func (ps *parser) policy(root *yaml.Node) error {
	root = yamlfile.Deref(root)
	if !yamlfile.IsNull(root) && root.Kind != yaml.MappingNode {
		return ps.fail(root, "want a mapping with the keys retry, throttle, codes and queues")
	}
	return ps.each(root, "policy", func(k, v *yaml.Node) error {
		switch k.Value {
		case "retry":
			return ps.retry(k, v)
		case "throttle":
			return ps.throttle(k, v)
		case "codes":
			return ps.codes(v)
		case "queues":
			return ps.readQueues(v)
		}
		return ps.fail(k, "unknown key %q (want retry, throttle, codes or queues)", k.Value)
	})
}

// orDefault returns d, or def when d is unset.
func orDefault(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

func (ps *parser) retry(section, n *yaml.Node) error {
	s := &ps.settings
	maxAt := section
	err := ps.each(n, "retry", func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "maxRetries":
			s.MaxRetries, err = ps.count(v, "retry.maxRetries", 1, classify.MaxRetriesLimit)
		case "baseDelay":
			s.BaseDelay, err = ps.duration(v, "retry.baseDelay", classify.BaseDelayMin, classify.BaseDelayMax)
		case "maxDelay":
			maxAt = k
			s.MaxDelay, err = ps.duration(v, "retry.maxDelay", classify.BaseDelayMin, classify.MaxDelayMax)
		default:
			err = ps.fail(k, "retry: unknown key %q (want maxRetries, baseDelay or maxDelay)", k.Value)
		}
		return err
	})
	base, most := orDefault(s.BaseDelay, classify.BaseDelayDefault), orDefault(s.MaxDelay, classify.MaxDelayDefault)
	if err == nil && most < base {
		err = ps.fail(maxAt, "retry.maxDelay (%v) must be at least retry.baseDelay (%v)", most, base)
	}
	return err
}

func (ps *parser) throttle(section, n *yaml.Node) error {
	s := &ps.settings
	maxAt := section
	err := ps.each(n, "throttle", func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "minWait":
			s.MinWait, err = ps.duration(v, "throttle.minWait", classify.MinWaitMin, classify.MinWaitMax)
		case "maxWait":
			maxAt = k
			s.MaxWait, err = ps.duration(v, "throttle.maxWait", classify.MinWaitMin, classify.MaxWaitMax)
		default:
			err = ps.fail(k, "throttle: unknown key %q (want minWait or maxWait)", k.Value)
		}
		return err
	})
	least, most := orDefault(s.MinWait, classify.MinWaitDefault), orDefault(s.MaxWait, classify.MaxWaitDefault)
	if err == nil && most < least {
		err = ps.fail(maxAt, "throttle.maxWait (%v) must be at least throttle.minWait (%v)", most, least)
	}
	return err
}

func (ps *parser) count(n *yaml.Node, field string, lo, hi int) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, ps.fail(n, "%s: want a whole number, got %s", field, yamlfile.Describe(n))
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < lo || v > hi {
		return 0, ps.fail(n, "%s must be between %d and %d, got %s", field, lo, hi, n.Value)
	}
	return v, nil
}

func (ps *parser) duration(n *yaml.Node, field string, lo, hi time.Duration) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return 0, ps.fail(n, "%s: want a duration with a unit such as \"2s\", got %s", field, yamlfile.Describe(n))
	}
	d, err := time.ParseDuration(n.Value)
	if err != nil {
		return 0, ps.fail(n, "%s: bad duration %q (want a number and a unit, such as \"500ms\", \"2s\" or \"1m\")", field, n.Value)
	}
	if d < lo || d > hi {
		return 0, ps.fail(n, "%s must be between %v and %v, got %v", field, lo, hi, d)
	}
	return d, nil
}

// codes reads the codes section: a mapping of code to decision or rule, or a list of rules.
func (ps *parser) codes(n *yaml.Node) error {
	if ps.seen == nil {
		ps.seen = map[string]int{}
	}
	n = yamlfile.Deref(n)
	if n.Kind != yaml.SequenceNode {
		return ps.each(n, "codes", func(k, v *yaml.Node) error {
			return ps.code(k, k.Value, v, false)
		})
	}
	for _, item := range n.Content {
		item = yamlfile.Deref(item)
		if item.Kind != yaml.MappingNode {
			return ps.fail(item, "codes: want each item to be a mapping with errorCode and decision, got %s", yamlfile.Describe(item))
		}
		var code *yaml.Node
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k := yamlfile.Deref(item.Content[i]); k.Kind == yaml.ScalarNode && k.Value == "errorCode" {
				code = yamlfile.Deref(item.Content[i+1])
			}
		}
		if code == nil {
			return ps.fail(item, "codes: item without errorCode")
		}
		if code.Kind != yaml.ScalarNode || yamlfile.IsNull(code) {
			return ps.fail(code, "codes: errorCode: want a code such as CAPTCHA_UNSOLVABLE, got %s", yamlfile.Describe(code))
		}
		if err := ps.code(code, code.Value, item, true); err != nil {
			return err
		}
	}
	return nil
}

// code reads one code's rule from v: a decision name or a mapping with decision, reason,
// errorId and custom (and errorCode, in the list form).
func (ps *parser) code(at *yaml.Node, code string, v *yaml.Node, listForm bool) error {
	if line, dup := ps.seen[code]; dup {
		return ps.fail(at, "code %q is set twice (first on line %d)", code, line)
	}
	ps.seen[code] = at.Line
	r := classify.Rule{ErrorCode: code}
	var decisionAt *yaml.Node
	switch {
	case v.Kind == yaml.ScalarNode && !yamlfile.IsNull(v):
		decisionAt = v
	case v.Kind == yaml.MappingNode:
		err := ps.each(v, fmt.Sprintf("code %q", code), func(k, f *yaml.Node) error {
			switch k.Value {
			case "decision":
				decisionAt = f
			case "reason":
				if f.Kind != yaml.ScalarNode || yamlfile.IsNull(f) {
					return ps.fail(f, "code %q: reason: want text, got %s", code, yamlfile.Describe(f))
				}
				r.Reason = f.Value
			case "errorId":
				id, err := ps.errorID(f, code)
				r.ErrorID = id
				return err
			case "custom":
				if f.Kind != yaml.ScalarNode || f.Tag != "!!bool" {
					return ps.fail(f, "code %q: custom: want true or false, got %s", code, yamlfile.Describe(f))
				}
				r.Custom = f.Value == "true"
			case "errorCode":
				if !listForm {
					return ps.fail(k, "code %q: errorCode belongs to the list form; here the key is the code", code)
				}
			default:
				return ps.fail(k, "code %q: unknown key %q (want decision, reason or errorId); custom: true marks a code of your own", code, k.Value)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if decisionAt == nil {
			return ps.fail(v, "code %q: missing decision (want retry, throttle, failed or dead)", code)
		}
	default:
		return ps.fail(v, "code %q: want a decision (retry, throttle, failed or dead) or a mapping with one, got %s", code, yamlfile.Describe(v))
	}
	if decisionAt.Kind != yaml.ScalarNode {
		return ps.fail(decisionAt, "code %q: want a decision (retry, throttle, failed or dead), got %s", code, yamlfile.Describe(decisionAt))
	}
	d, err := classify.ParseDecision(decisionAt.Value)
	if err != nil {
		return ps.fail(decisionAt, "code %q: %v", code, err)
	}
	r.Decision = d
	if err := classify.CheckCode(code, r.Custom); err != nil {
		return ps.fail(at, "%v", err)
	}
	ps.settings.Codes = append(ps.settings.Codes, r)
	return nil
}

// errorID reads a code's errorId, which must agree with AnySolver's table.
func (ps *parser) errorID(n *yaml.Node, code string) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, ps.fail(n, "code %q: errorId: want 1 or 2, got %s", code, yamlfile.Describe(n))
	}
	id, err := strconv.Atoi(n.Value)
	if err != nil {
		return 0, ps.fail(n, "code %q: errorId: want 1 or 2, got %s", code, n.Value)
	}
	base, known := tableID(code)
	switch {
	case known && base == 0 && id != 0:
		return 0, ps.fail(n, "code %q is synthesized for transport failures and has no errorId (leave it out or use 0)", code)
	case known && base != 0 && id != base:
		return 0, ps.fail(n, "code %q has errorId %d in AnySolver's table, not %d (leave it out)", code, base, id)
	case !known && (id < 0 || id > 2):
		return 0, ps.fail(n, "code %q: errorId: want 1 or 2, got %d", code, id)
	}
	return id, nil
}

// tableID returns code's errorId in classify's default table (0 for a transport code), and
// whether the table has the code.
func tableID(code string) (int, bool) {
	for _, r := range classify.Default().Rules() {
		if r.ErrorCode == code {
			return r.ErrorID, true
		}
	}
	return 0, false
}
