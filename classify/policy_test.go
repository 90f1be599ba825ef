package classify_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

const goodYAML = `# solvequeue policy
retry:
  maxRetries: 4
  baseDelay: 1s
  maxDelay: 30s
throttle:
  minWait: 8s
  maxWait: 2m
codes:
  CAPTCHA_UNSOLVABLE: failed
  MY_NEW_CODE: {decision: retry, reason: "Our provider's new flake.", errorId: 1}
  HTTP_4XX: retry
  ANOTHER_CODE:
    decision: Throttle
`

const goodJSON = `{
  "retry": {"maxRetries": 4, "baseDelay": "1s", "maxDelay": "30s"},
  "throttle": {"minWait": "8s", "maxWait": "2m"},
  "codes": {
    "CAPTCHA_UNSOLVABLE": "failed",
    "MY_NEW_CODE": {"decision": "retry", "reason": "Our provider's new flake.", "errorId": 1},
    "HTTP_4XX": "retry",
    "ANOTHER_CODE": {"decision": "throttle"}
  }
}`

func TestParseGood(t *testing.T) {
	t.Parallel()

	for name, src := range map[string]string{"policy.yaml": goodYAML, "policy.json": goodJSON} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p, err := classify.Parse(name, []byte(src))
			require.NoError(t, err)
			require.Equal(t, name, p.Name())
			require.Equal(t, 4, p.MaxRetries())
			require.Equal(t, 500*time.Millisecond, p.RetryDelay(0, 0))
			require.Equal(t, 15*time.Second, p.RetryDelay(10, 0), "capped at 30s, half of it fixed")

			v := p.Classify(classify.Error{ErrorID: 1, ErrorCode: "CAPTCHA_UNSOLVABLE"})
			require.Equal(t, classify.Failed, v.Decision)
			require.Contains(t, v.Reason, name)

			v = p.Classify(classify.Error{ErrorID: 1, ErrorCode: "my_new_code"})
			require.Equal(t, classify.Verdict{Decision: classify.Retry, Code: "MY_NEW_CODE", Reason: "Our provider's new flake."}, v)
			require.Equal(t, classify.Retry, p.Classify(classify.Error{Failure: classify.FailureHTTPStatus, HTTPStatus: 404}).Decision)

			v = p.Classify(classify.Error{ErrorID: 1, ErrorCode: "ANOTHER_CODE"})
			require.Equal(t, classify.Throttle, v.Decision)
			require.Equal(t, 8*time.Second, v.Wait, "the policy's minWait")
			require.Equal(t, 10*time.Second, p.Classify(classify.Error{ErrorCode: "PROVIDER_RATE_LIMITED"}).Wait)

			// Untouched codes keep the default.
			require.Equal(t, classify.Failed, p.Classify(classify.Error{ErrorID: 1, ErrorCode: "DOMAIN_BANNED"}).Decision)

			rules := p.Rules()
			require.Len(t, rules, 36+2+8)
			require.Equal(t, "CAPTCHA_UNSOLVABLE", rules[0].ErrorCode)
			require.Equal(t, classify.Failed, rules[0].Decision)
			require.Equal(t, classify.Rule{ErrorID: 0, ErrorCode: "ANOTHER_CODE", Decision: classify.Throttle, Reason: rules[36].Reason}, rules[36])
			require.Equal(t, classify.Rule{ErrorID: 1, ErrorCode: "MY_NEW_CODE", Decision: classify.Retry, Reason: "Our provider's new flake."}, rules[37])
			require.Equal(t, classify.CodeTimeout, rules[38].ErrorCode)
		})
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()

	for _, src := range []string{"", "# nothing\n", "---\n", "~\n", "{}", "retry:\ncodes:\n", "codes: {}\nthrottle: {}\n"} {
		p, err := classify.Parse("empty.yaml", []byte(src))
		require.NoError(t, err, "%q", src)
		require.Equal(t, classify.Default().Rules(), p.Rules())
		require.Equal(t, classify.MaxRetriesDefault, p.MaxRetries())
	}
}

// The JSON of Rules, as `solvequeue policy --json` prints it, reads back as a policy.
func TestParseRulesRoundTrip(t *testing.T) {
	t.Parallel()

	p, err := classify.Parse("in.yaml", []byte(goodYAML))
	require.NoError(t, err)
	data, err := json.Marshal(map[string]any{"codes": p.Rules()})
	require.NoError(t, err)
	q, err := classify.Parse("out.json", data)
	require.NoError(t, err)
	require.Equal(t, p.Rules(), q.Rules())
}

func TestParseBad(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name, src, want string
	}{
		{"syntax", "retry:\n  maxRetries: 3\n bad", "bad.yaml: line 2: did not find expected key"},
		{"syntax tab", "codes:\n\tX: retry\n", "bad.yaml: line 2: "},
		{"json syntax", `{"codes": {"X": "retry",}`, "bad.yaml: line 1: "},
		{"not a mapping", "- retry\n", "bad.yaml: line 1: want a mapping with the keys retry, throttle, codes and queues"},
		{"unknown top-level key", "retry: {}\nretries: 3\n", `bad.yaml: line 2: unknown key "retries" (want retry, throttle, codes or queues)`},
		{"top-level key twice", "codes: {}\ncodes: {}\n", `line 2: policy: key "codes" is set twice (first on line 1)`},
		{"two documents", "codes: {}\n---\ncodes: {}\n", "line 2: a policy file holds one YAML document"},
		{"unknown decision", "# c\n\n\n\n\ncodes:\n  X: retri\n", `bad.yaml: line 7: code "X": unknown decision "retri" (want retry, throttle, failed or dead)`},
		{"unknown decision long", "codes:\n  X:\n    decision: skip\n", `line 3: code "X": unknown decision "skip"`},
		{"missing decision", "codes:\n  X: {reason: why}\n", `line 2: code "X": missing decision`},
		{"null decision", "codes:\n  X:\n", `line 2: code "X": want a decision (retry, throttle, failed or dead) or a mapping with one, got nothing`},
		{"list decision", "codes:\n  X: [retry]\n", `line 2: code "X": want a decision`},
		{"unknown rule key", "codes:\n  X: {decision: retry, wait: 5s}\n", `line 2: code "X": unknown key "wait" (want decision, reason or errorId)`},
		{"lower-case code", "codes:\n  captcha_unsolvable: failed\n", `line 2: code "captcha_unsolvable": want an UPPER_SNAKE code`},
		{"code with dash", "codes:\n  BAD-CODE: failed\n", `line 2: code "BAD-CODE": want an UPPER_SNAKE code`},
		{"code with space", "codes:\n  \"BAD CODE\": failed\n", `want an UPPER_SNAKE code`},
		{"code set twice", "codes:\n  X: retry\n  X: dead\n", `line 3: codes: key "X" is set twice (first on line 2)`},
		{"code twice in list", "codes:\n  - {errorCode: X, decision: retry}\n  - {errorCode: X, decision: dead}\n", `line 3: code "X" is set twice (first on line 2)`},
		{"list item without code", "codes:\n  - {decision: retry}\n", "line 2: codes: item without errorCode"},
		{"list item not a mapping", "codes:\n  - X\n", "line 2: codes: want each item to be a mapping"},
		{"errorCode in mapping form", "codes:\n  X: {decision: retry, errorCode: Y}\n", `errorCode belongs to the list form`},
		{"seed errorId contradicted", "codes:\n  RATE_LIMITED: {decision: throttle, errorId: 2}\n", `line 2: code "RATE_LIMITED" has errorId 1 in AnySolver's table, not 2`},
		{"synthesized errorId", "codes:\n  HTTP_5XX: {decision: retry, errorId: 2}\n", `code "HTTP_5XX" is synthesized for transport failures and has no errorId`},
		{"errorId out of range", "codes:\n  X: {decision: retry, errorId: 9}\n", `code "X": errorId: want 1 or 2, got 9`},
		{"errorId text", "codes:\n  X: {decision: retry, errorId: one}\n", `code "X": errorId: want 1 or 2, got "one"`},
		{"reason not text", "codes:\n  X: {decision: retry, reason: [a]}\n", `code "X": reason: want text`},
		{"codes not a mapping", "codes: retry\n", "line 1: codes: want a mapping"},
		{"zero budget", "retry:\n  maxRetries: 0\n", "line 2: retry.maxRetries must be between 1 and 100, got 0"},
		{"negative budget", "retry:\n  maxRetries: -3\n", "line 2: retry.maxRetries must be between 1 and 100, got -3"},
		{"a budget past what asynq is told", "retry:\n  maxRetries: 101\n", "line 2: retry.maxRetries must be between 1 and 100, got 101"},
		{"text budget", "retry:\n  maxRetries: ten\n", `line 2: retry.maxRetries: want a whole number, got "ten"`},
		{"float budget", "retry:\n  maxRetries: 2.5\n", `line 2: retry.maxRetries: want a whole number, got "2.5"`},
		{"unknown retry key", "retry:\n  maxAttempts: 3\n", `line 2: retry: unknown key "maxAttempts" (want maxRetries, baseDelay or maxDelay)`},
		{"unknown throttle key", "throttle:\n  wait: 3s\n", `line 2: throttle: unknown key "wait" (want minWait or maxWait)`},
		{"retry not a mapping", "retry: 3\n", "line 1: retry: want a mapping"},
		{"bad duration", "retry:\n  baseDelay: 2 seconds\n", `line 2: retry.baseDelay: bad duration "2 seconds"`},
		{"duration without unit", "retry:\n  baseDelay: 2\n", `line 2: retry.baseDelay: want a duration with a unit such as "2s", got "2"`},
		{"negative duration", "retry:\n  baseDelay: -2s\n", "line 2: retry.baseDelay must be between 100ms and 1m0s, got -2s"},
		{"zero duration", "throttle:\n  minWait: 0s\n", "line 2: throttle.minWait must be between 1s and 10m0s, got 0s"},
		{"base too long", "retry:\n  baseDelay: 5m\n", "line 2: retry.baseDelay must be between 100ms and 1m0s, got 5m0s"},
		{"max below base", "retry:\n  baseDelay: 5s\n  maxDelay: 1s\n", "line 3: retry.maxDelay (1s) must be at least retry.baseDelay (5s)"},
		{"maxWait below minWait", "throttle:\n  minWait: 5m\n", "line 1: throttle.maxWait (1m0s) must be at least throttle.minWait (5m0s)"},
		{"key not a name", "codes:\n  ? [A]\n  : retry\n", "line 2: codes: want a plain name as key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := classify.Parse("bad.yaml", []byte(tt.src))
			require.Nil(t, p)
			require.ErrorContains(t, err, tt.want)
			require.Regexp(t, `^bad\.yaml: line [1-9]`, err.Error(), "names the file and line")
			var pe *classify.ParseError
			require.True(t, errors.As(err, &pe))
			require.Equal(t, "bad.yaml", pe.File)
			require.Positive(t, pe.Line)
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()

	_, err := classify.Parse("", make([]byte, 2<<20))
	require.ErrorContains(t, err, "policy: a policy file must stay under")
}

func TestParseAliases(t *testing.T) {
	t.Parallel()

	p, err := classify.Parse("alias.yaml", []byte("codes:\n  A_CODE: &d failed\n  B_CODE: *d\n"))
	require.NoError(t, err)
	require.Equal(t, classify.Failed, p.Classify(classify.Error{ErrorCode: "B_CODE"}).Decision)
}

func TestLoad(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(goodYAML), 0o600))
	p, err := classify.Load(path)
	require.NoError(t, err)
	require.Equal(t, path, p.Name())
	require.Equal(t, 4, p.MaxRetries())

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("codes:\n  X: retri\n"), 0o600))
	_, err = classify.Load(bad)
	require.ErrorContains(t, err, bad+`: line 2: code "X": unknown decision "retri"`)

	_, err = classify.Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "read policy: ")
}
