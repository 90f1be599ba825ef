package anysolvertest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DirectivePrefix starts a websiteKey that scripts the fake (see DirectiveScript).
const DirectivePrefix = "sq:"

// maxDirectiveCount bounds N in a directive item.
const maxDirectiveCount = 1_000_000

// DirectiveScript returns a Script that lets a job script the fake through its websiteKey,
// for staging and process-level tests that have no Go code. Keys not starting with "sq:" get
// fallback(t) (DefaultBehavior if fallback is nil); directive keys start from DefaultBehavior,
// so a fallback's random errors never blur a directive's plan.
//
// The grammar: "sq:" then items separated by ";" (spaces around items are ignored).
// Outcome items run in the order written, each for N createTask attempts of the key
// (Task.Attempt; N is 1 when "*N" is left out); once they are used up, tasks solve:
//
//	create=CODE[/ID][*N]  createTask answers errorCode CODE (errorId ID, else the seed table's, else 1)
//	http=FAULT[*N]        createTask answers the transport fault FAULT (html502, reset, hang, ...)
//	poll=CODE[*N]         the created task answers CODE to every getTaskResult
//	pollhttp=FAULT[*N]    the created task answers FAULT to every getTaskResult
//	failed=CODE[*N]       the created task ends with status "failed" and CODE once solved
//
// Modifiers apply to every attempt:
//
//	solve=DURATION        solve time in Go syntax (6s, 1500ms)
//	immediate             the solution comes in the createTask answer
//	id=TEXT               no effect but making the key unique: counts are kept per whole websiteKey
//
// Example: "sq:id=job7;create=SERVICE_UNAVAILABLE*2;poll=TASK_NOT_FOUND;failed=CAPTCHA_UNSOLVABLE;solve=6s"
// answers SERVICE_UNAVAILABLE to the first two creates, then creates a task whose polls answer
// TASK_NOT_FOUND, then one that fails with CAPTCHA_UNSOLVABLE after 6 s, then solves in 6 s.
// A directive that does not parse is answered INVALID_SITEKEY with the reason in errorDescription.
func DirectiveScript(fallback func(Task) Behavior) func(Task) Behavior {
	if fallback == nil {
		fallback = DefaultBehavior
	}
	return func(t Task) Behavior {
		wk, _ := t.Fields["websiteKey"].(string)
		text, ok := strings.CutPrefix(wk, DirectivePrefix)
		if !ok {
			return fallback(t)
		}
		d, err := parseDirective(text)
		if err != nil {
			return Behavior{CreateError: "INVALID_SITEKEY", CreateErrorDescription: "bad solvequeue directive: " + err.Error()}
		}
		return d.behavior(t)
	}
}

// directive is a parsed "sq:" websiteKey.
type directive struct {
	steps     []step
	solve     time.Duration
	hasSolve  bool
	immediate bool
}

// step is one outcome item: kind is its name (create, http, poll, pollhttp, failed).
type step struct {
	kind  string
	code  string
	id    int
	fault Fault
	n     int
}

func parseDirective(text string) (directive, error) {
	var d directive
	for item := range strings.SplitSeq(text, ";") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, hasValue := strings.Cut(item, "=")
		switch name {
		case "immediate":
			if hasValue {
				return d, fmt.Errorf("%q takes no value", item)
			}
			d.immediate = true
		case "id":
		case "solve":
			dur, err := time.ParseDuration(value)
			if err != nil || dur < 0 {
				return d, fmt.Errorf("%q: want a duration such as 6s", item)
			}
			d.solve, d.hasSolve = dur, true
		case "create", "poll", "failed", "http", "pollhttp":
			st, err := parseStep(name, value)
			if err != nil {
				return d, fmt.Errorf("%q: %w", item, err)
			}
			d.steps = append(d.steps, st)
		default:
			return d, fmt.Errorf("unknown item %q (want create, http, poll, pollhttp, failed, solve, immediate or id)", item)
		}
	}
	return d, nil
}

func parseStep(kind, value string) (step, error) {
	st := step{kind: kind, n: 1}
	if v, count, ok := strings.Cut(value, "*"); ok {
		n, err := strconv.Atoi(count)
		if err != nil || n < 1 || n > maxDirectiveCount {
			return st, fmt.Errorf("count %q must be a whole number from 1 to %d", count, maxDirectiveCount)
		}
		value, st.n = v, n
	}
	if kind == "http" || kind == "pollhttp" {
		f, ok := ParseFault(value)
		if !ok {
			return st, errors.New("unknown fault (want html502, http503, http429, garbage, truncated, wrongshape, huge, endless, hang or reset)")
		}
		st.fault = f
		return st, nil
	}
	if kind == "create" {
		if code, id, ok := strings.Cut(value, "/"); ok {
			n, err := strconv.Atoi(id)
			if err != nil || n == 0 {
				return st, fmt.Errorf("errorId %q must be a non-zero whole number", id)
			}
			value, st.id = code, n
		}
	}
	if !validCode(value) {
		return st, errors.New("the code must be upper-case letters, digits and _")
	}
	st.code = value
	return st, nil
}

func validCode(code string) bool {
	if code == "" || len(code) > 64 {
		return false
	}
	for _, c := range code {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// behavior is the directive's Behavior for attempt t.Attempt.
func (d directive) behavior(t Task) Behavior {
	b := DefaultBehavior(t)
	if d.hasSolve {
		b.SolveTime = d.solve
	}
	if d.immediate {
		b.Immediate = true
	}
	left := t.Attempt
	for _, st := range d.steps {
		if left >= st.n {
			left -= st.n
			continue
		}
		switch st.kind {
		case "create":
			b.CreateError, b.CreateErrorID = st.code, st.id
		case "http":
			b.CreateHTTP = st.fault
		case "poll":
			b.PollError = st.code
		case "pollhttp":
			b.PollHTTP = st.fault
		case "failed":
			b.PollFailed = st.code
		}
		break
	}
	return b
}
