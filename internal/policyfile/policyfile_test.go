package policyfile_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/policyfile"
	"github.com/solvequeue/solvequeue/internal/yamlfile"
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
  MY_NEW_CODE: {decision: retry, reason: "Our provider's new flake.", errorId: 1, custom: true}
  HTTP_4XX: retry
  ANOTHER_CODE:
    decision: Throttle
    custom: true
`

const goodJSON = `{
  "retry": {"maxRetries": 4, "baseDelay": "1s", "maxDelay": "30s"},
  "throttle": {"minWait": "8s", "maxWait": "2m"},
  "codes": {
    "CAPTCHA_UNSOLVABLE": "failed",
    "MY_NEW_CODE": {"decision": "retry", "reason": "Our provider's new flake.", "errorId": 1, "custom": true},
    "HTTP_4XX": "retry",
    "ANOTHER_CODE": {"decision": "throttle", "custom": true}
  }
}`

func TestParseGood(t *testing.T) {
	t.Parallel()

	for name, src := range map[string]string{"policy.yaml": goodYAML, "policy.json": goodJSON} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			pf, err := policyfile.Parse(name, []byte(src))
			require.NoError(t, err)
			require.Equal(t, name, pf.Name())
			p := pf.Classification()
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
			require.Equal(t, classify.Rule{ErrorID: 0, ErrorCode: "ANOTHER_CODE", Decision: classify.Throttle, Reason: rules[36].Reason, Custom: true}, rules[36])
			require.Equal(t, classify.Rule{ErrorID: 1, ErrorCode: "MY_NEW_CODE", Decision: classify.Retry, Reason: "Our provider's new flake.", Custom: true}, rules[37])
			require.Equal(t, classify.CodeTimeout, rules[38].ErrorCode)
		})
	}
}

func TestParseEmpty(t *testing.T) {
	t.Parallel()

	for _, src := range []string{"", "# nothing\n", "---\n", "~\n", "{}", "retry:\ncodes:\n", "codes: {}\nthrottle: {}\n"} {
		p, err := policyfile.Parse("empty.yaml", []byte(src))
		require.NoError(t, err, "%q", src)
		require.Equal(t, classify.Default().Rules(), p.Classification().Rules())
		require.Equal(t, classify.MaxRetriesDefault, p.Classification().MaxRetries())
	}
}

// The JSON of Rules, as `solvequeue policy --json` prints it, reads back as a policy.
func TestParseRulesRoundTrip(t *testing.T) {
	t.Parallel()

	p, err := policyfile.Parse("in.yaml", []byte(goodYAML))
	require.NoError(t, err)
	data, err := json.Marshal(map[string]any{"codes": p.Classification().Rules()})
	require.NoError(t, err)
	q, err := policyfile.Parse("out.json", data)
	require.NoError(t, err)
	require.Equal(t, p.Classification().Rules(), q.Classification().Rules())
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
		{"code set twice", "codes:\n  X: {decision: retry, custom: true}\n  X: dead\n", `line 3: codes: key "X" is set twice (first on line 2)`},
		{"code twice in list", "codes:\n  - {errorCode: X, decision: retry, custom: true}\n  - {errorCode: X, decision: dead, custom: true}\n", `line 3: code "X" is set twice (first on line 2)`},
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
		{"typo in a code", "retry: {maxRetries: 3}\ncodes:\n  CAPCHA_UNSOLVABLE: failed\n",
			`line 3: code "CAPCHA_UNSOLVABLE" is not a known code: did you mean CAPTCHA_UNSOLVABLE? (a code of your own needs custom: true`},
		{"typo in a code, long form", "codes:\n  CAPTCHA_UNSOLVALBE: {decision: failed}\n", `line 2: code "CAPTCHA_UNSOLVALBE" is not a known code: did you mean CAPTCHA_UNSOLVABLE?`},
		{"typo in a code, list form", "codes:\n  - {errorCode: TASK_TIMEOT, decision: dead}\n", `line 2: code "TASK_TIMEOT" is not a known code: did you mean TASK_TIMEOUT?`},
		{"typo in an own code", "codes:\n  BUDGET_SPEND: dead\n", `did you mean BUDGET_SPENT?`},
		{"unknown code, nothing near", "codes:\n  MY_NEW_CODE: retry\n", `line 2: code "MY_NEW_CODE" is not one of AnySolver's, the transport codes or solvequeue's own; a code of your own needs custom: true`},
		{"custom on a known code", "codes:\n  CAPTCHA_UNSOLVABLE: {decision: failed, custom: true}\n", `line 2: code "CAPTCHA_UNSOLVABLE" is a known code, not a custom one`},
		{"custom not a boolean", "codes:\n  MY_CODE: {decision: failed, custom: yes please}\n", `line 2: code "MY_CODE": custom: want true or false, got "yes please"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := policyfile.Parse("bad.yaml", []byte(tt.src))
			require.Nil(t, p)
			require.ErrorContains(t, err, tt.want)
			require.Regexp(t, `^bad\.yaml: line [1-9]`, err.Error(), "names the file and line")
			var pe *yamlfile.Error
			require.True(t, errors.As(err, &pe))
			require.Equal(t, "bad.yaml", pe.File)
			require.Positive(t, pe.Line)
		})
	}
}

// A code outside the known ones is taken only when marked custom; known codes need no mark.
func TestParseCodeNames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, src, code string
		want            classify.Decision
		custom          bool
	}{
		{"a seed code", "codes:\n  CAPTCHA_UNSOLVABLE: failed\n", "CAPTCHA_UNSOLVABLE", classify.Failed, false},
		{"a transport code", "codes:\n  HTTP_4XX: retry\n", "HTTP_4XX", classify.Retry, false},
		{"one of solvequeue's own", "codes:\n  WORKER_ERROR: retry\n", "WORKER_ERROR", classify.Retry, false},
		{"a custom code", "codes:\n  CAPCHA_UNSOLVABLE: {decision: failed, custom: true}\n", "CAPCHA_UNSOLVABLE", classify.Failed, true},
		{"a custom code, list form", "codes:\n  - {errorCode: MY_CODE, decision: dead, errorId: 1, custom: true}\n", "MY_CODE", classify.Dead, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := policyfile.Parse("codes.yaml", []byte(tt.src))
			require.NoError(t, err)
			require.Equal(t, tt.want, p.Classification().Classify(classify.Error{ErrorID: 1, ErrorCode: tt.code}).Decision)
			var found bool
			for _, r := range p.Classification().Rules() {
				if r.ErrorCode == tt.code {
					found = true
					require.Equal(t, tt.custom, r.Custom)
				}
			}
			require.True(t, found, "the table lists the code")
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	t.Parallel()

	_, err := policyfile.Parse("", make([]byte, 2<<20))
	require.ErrorContains(t, err, "policy: a policy file must stay under")
}

func TestParseAliases(t *testing.T) {
	t.Parallel()

	p, err := policyfile.Parse("alias.yaml", []byte("codes:\n  A_CODE: {decision: &d failed, custom: true}\n  B_CODE: {decision: *d, custom: true}\n"))
	require.NoError(t, err)
	require.Equal(t, classify.Failed, p.Classification().Classify(classify.Error{ErrorCode: "B_CODE"}).Decision)
}

func TestLoad(t *testing.T) {
	t.Parallel()

	dir := t.TempDir()
	path := filepath.Join(dir, "policy.yaml")
	require.NoError(t, os.WriteFile(path, []byte(goodYAML), 0o600))
	p, err := policyfile.Load(path)
	require.NoError(t, err)
	require.Equal(t, path, p.Name())
	require.Equal(t, 4, p.Classification().MaxRetries())

	bad := filepath.Join(dir, "bad.yaml")
	require.NoError(t, os.WriteFile(bad, []byte("codes:\n  X: retri\n"), 0o600))
	_, err = policyfile.Load(bad)
	require.ErrorContains(t, err, bad+`: line 2: code "X": unknown decision "retri"`)

	_, err = policyfile.Load(filepath.Join(dir, "missing.yaml"))
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "read policy: ")
}
