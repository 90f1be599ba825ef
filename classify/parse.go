package classify

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// codePattern is an UPPER_SNAKE code such as CAPTCHA_UNSOLVABLE or HTTP_4XX.
var codePattern = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)

const maxCodeLen = 64

// yamlLine splits "yaml: line 3: msg" into 3 and "msg".
var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// decodeYAML returns the root node of the one document in data, or nil for an empty file.
func decodeYAML(name string, data []byte) (root *yaml.Node, err error) {
	// The YAML library is not ours; a panic in it must not take the caller down.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, &ParseError{File: name, Msg: fmt.Sprintf("cannot read YAML: %v", r)}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlError(name, err)
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, yamlError(name, err)
	default:
		return nil, &ParseError{File: name, Line: next.Line, Msg: "a policy file holds one YAML document; this is a second"}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	return doc.Content[0], nil
}

func yamlError(name string, err error) error {
	line, msg := YAMLErrorLine(err)
	return &ParseError{File: name, Line: line, Msg: msg}
}

// YAMLErrorLine splits an error of go.yaml.in/yaml/v3 into the 1-based line it names (0 when it
// names none) and its message without the "yaml: line N:" prefix, for errors that name the file
// and line of any YAML file solvequeue reads (policy files, gateway keys files).
func YAMLErrorLine(err error) (line int, msg string) {
	msg = strings.TrimPrefix(err.Error(), "yaml: ")
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		if n, err := strconv.Atoi(m[1]); err == nil {
			return n, m[2]
		}
	}
	return 0, msg
}

// parser walks a policy file's nodes into p.
type parser struct {
	name string
	p    *Policy
	seen map[string]int // code -> line it was set on
}

func (ps *parser) fail(n *yaml.Node, format string, args ...any) error {
	return &ParseError{File: ps.name, Line: n.Line, Msg: fmt.Sprintf(format, args...)}
}

// deref follows an alias to its anchored node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; i < 8 && n.Kind == yaml.AliasNode && n.Alias != nil; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// each calls fn for every key and value of mapping n, refusing non-scalar and repeated keys.
func (ps *parser) each(n *yaml.Node, what string, fn func(k, v *yaml.Node) error) error {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return ps.fail(n, "%s: want a mapping, got %s", what, describe(n))
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), deref(n.Content[i+1])
		if k.Kind != yaml.ScalarNode {
			return ps.fail(k, "%s: want a plain name as key", what)
		}
		if line, dup := seen[k.Value]; dup {
			return ps.fail(k, "%s: key %q is set twice (first on line %d)", what, k.Value, line)
		}
		seen[k.Value] = k.Line
		if err := fn(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (ps *parser) policy(root *yaml.Node) error {
	root = deref(root)
	if !isNull(root) && root.Kind != yaml.MappingNode {
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
			return ps.queues(v)
		}
		return ps.fail(k, "unknown key %q (want retry, throttle, codes or queues)", k.Value)
	})
}

func (ps *parser) retry(section, n *yaml.Node) error {
	maxAt := section
	err := ps.each(n, "retry", func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "maxRetries":
			ps.p.maxRetries, err = ps.count(v, "retry.maxRetries", 1, maxRetriesLimit)
		case "baseDelay":
			ps.p.baseDelay, err = ps.duration(v, "retry.baseDelay", minBaseDelay, maxBaseDelay)
		case "maxDelay":
			maxAt = k
			ps.p.maxDelay, err = ps.duration(v, "retry.maxDelay", minBaseDelay, maxMaxDelay)
		default:
			err = ps.fail(k, "retry: unknown key %q (want maxRetries, baseDelay or maxDelay)", k.Value)
		}
		return err
	})
	if err == nil && ps.p.maxDelay < ps.p.baseDelay {
		err = ps.fail(maxAt, "retry.maxDelay (%v) must be at least retry.baseDelay (%v)", ps.p.maxDelay, ps.p.baseDelay)
	}
	return err
}

func (ps *parser) throttle(section, n *yaml.Node) error {
	maxAt := section
	err := ps.each(n, "throttle", func(k, v *yaml.Node) error {
		var err error
		switch k.Value {
		case "minWait":
			ps.p.minWait, err = ps.duration(v, "throttle.minWait", minMinWait, maxMinWait)
		case "maxWait":
			maxAt = k
			ps.p.maxWait, err = ps.duration(v, "throttle.maxWait", minMinWait, maxMaxWait)
		default:
			err = ps.fail(k, "throttle: unknown key %q (want minWait or maxWait)", k.Value)
		}
		return err
	})
	if err == nil && ps.p.maxWait < ps.p.minWait {
		err = ps.fail(maxAt, "throttle.maxWait (%v) must be at least throttle.minWait (%v)", ps.p.maxWait, ps.p.minWait)
	}
	return err
}

func (ps *parser) count(n *yaml.Node, field string, lo, hi int) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, ps.fail(n, "%s: want a whole number, got %s", field, describe(n))
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < lo || v > hi {
		return 0, ps.fail(n, "%s must be between %d and %d, got %s", field, lo, hi, n.Value)
	}
	return v, nil
}

func (ps *parser) duration(n *yaml.Node, field string, lo, hi time.Duration) (time.Duration, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!str" {
		return 0, ps.fail(n, "%s: want a duration with a unit such as \"2s\", got %s", field, describe(n))
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

// describe names a node's value for an error message.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if isNull(n) {
			return "nothing"
		}
		return strconv.Quote(n.Value)
	}
	return "something else"
}

// codes reads the codes section: a mapping of code to decision or rule, or a list of rules.
func (ps *parser) codes(n *yaml.Node) error {
	if ps.p.codes == nil {
		ps.p.codes = map[string]Rule{}
		ps.seen = map[string]int{}
	}
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		return ps.each(n, "codes", func(k, v *yaml.Node) error {
			return ps.code(k, k.Value, v, false)
		})
	}
	for _, item := range n.Content {
		item = deref(item)
		if item.Kind != yaml.MappingNode {
			return ps.fail(item, "codes: want each item to be a mapping with errorCode and decision, got %s", describe(item))
		}
		var code *yaml.Node
		for i := 0; i+1 < len(item.Content); i += 2 {
			if k := deref(item.Content[i]); k.Kind == yaml.ScalarNode && k.Value == "errorCode" {
				code = deref(item.Content[i+1])
			}
		}
		if code == nil {
			return ps.fail(item, "codes: item without errorCode")
		}
		if code.Kind != yaml.ScalarNode || isNull(code) {
			return ps.fail(code, "codes: errorCode: want a code such as CAPTCHA_UNSOLVABLE, got %s", describe(code))
		}
		if err := ps.code(code, code.Value, item, true); err != nil {
			return err
		}
	}
	return nil
}

// code reads one code's decision from v: a decision name or a mapping with
// decision, reason and errorId (and errorCode, in the list form).
func (ps *parser) code(at *yaml.Node, code string, v *yaml.Node, listForm bool) error {
	if len(code) > maxCodeLen || !codePattern.MatchString(code) {
		return ps.fail(at, "code %q: want an UPPER_SNAKE code such as CAPTCHA_UNSOLVABLE", code)
	}
	if line, dup := ps.seen[code]; dup {
		return ps.fail(at, "code %q is set twice (first on line %d)", code, line)
	}
	ps.seen[code] = at.Line
	base, known := builtin[code]
	r := Rule{ErrorID: base.ErrorID, ErrorCode: code}
	var decisionAt *yaml.Node
	switch {
	case v.Kind == yaml.ScalarNode && !isNull(v):
		decisionAt = v
	case v.Kind == yaml.MappingNode:
		err := ps.each(v, fmt.Sprintf("code %q", code), func(k, f *yaml.Node) error {
			switch k.Value {
			case "decision":
				decisionAt = f
			case "reason":
				if f.Kind != yaml.ScalarNode || isNull(f) {
					return ps.fail(f, "code %q: reason: want text, got %s", code, describe(f))
				}
				r.Reason = strings.TrimSpace(f.Value)
			case "errorId":
				id, err := ps.errorID(f, code, base, known)
				r.ErrorID = id
				return err
			case "errorCode":
				if !listForm {
					return ps.fail(k, "code %q: errorCode belongs to the list form; here the key is the code", code)
				}
			default:
				return ps.fail(k, "code %q: unknown key %q (want decision, reason or errorId)", code, k.Value)
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
		return ps.fail(v, "code %q: want a decision (retry, throttle, failed or dead) or a mapping with one, got %s", code, describe(v))
	}
	if decisionAt.Kind != yaml.ScalarNode {
		return ps.fail(decisionAt, "code %q: want a decision (retry, throttle, failed or dead), got %s", code, describe(decisionAt))
	}
	d, err := ParseDecision(decisionAt.Value)
	if err != nil {
		return ps.fail(decisionAt, "code %q: %v", code, err)
	}
	r.Decision = d
	if r.Reason == "" {
		if known && d == base.Decision {
			r.Reason = base.Reason
		} else {
			r.Reason = fmt.Sprintf("Policy %s sets this code to %s.", ps.name, d)
		}
	}
	ps.p.codes[code] = r
	return nil
}

// errorID reads a code's errorId, which must agree with AnySolver's table.
func (ps *parser) errorID(n *yaml.Node, code string, base Rule, known bool) (int, error) {
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		return 0, ps.fail(n, "code %q: errorId: want 1 or 2, got %s", code, describe(n))
	}
	id, err := strconv.Atoi(n.Value)
	switch {
	case err != nil:
		return 0, ps.fail(n, "code %q: errorId: want 1 or 2, got %s", code, n.Value)
	case known && base.ErrorID == 0 && id != 0:
		return 0, ps.fail(n, "code %q is synthesized for transport failures and has no errorId (leave it out or use 0)", code)
	case known && base.ErrorID != 0 && id != base.ErrorID:
		return 0, ps.fail(n, "code %q has errorId %d in AnySolver's table, not %d (leave it out)", code, base.ErrorID, id)
	case !known && (id < 0 || id > 2):
		return 0, ps.fail(n, "code %q: errorId: want 1 or 2, got %d", code, id)
	}
	return id, nil
}
