package policyfile_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// FuzzParse checks that the policy parser never panics, and that whatever it
// accepts is a usable policy.
func FuzzParse(f *testing.F) {
	f.Add([]byte(goodYAML))
	f.Add([]byte(goodJSON))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policyfile.Parse("fuzz.yaml", data)
		if err != nil {
			require.Nil(t, p)
			require.Contains(t, err.Error(), "fuzz.yaml")
			return
		}
		c := p.Classification()
		require.GreaterOrEqual(t, c.MaxRetries(), 1)
		rules := c.Rules()
		require.GreaterOrEqual(t, len(rules), 36+8)
		for _, r := range rules {
			_, err := classify.ParseDecision(string(r.Decision))
			require.NoError(t, err, r.ErrorCode)
			require.NotEmpty(t, r.Reason, r.ErrorCode)
		}
		for n := 0; n < 50; n++ {
			require.Positive(t, c.RetryDelay(n, 0.5))
		}
		v := c.Classify(classify.Error{ErrorID: 1, ErrorCode: "RATE_LIMITED"})
		if v.Decision == classify.Throttle {
			require.GreaterOrEqual(t, v.Wait, 5*time.Second)
			require.GreaterOrEqual(t, c.ThrottleDelay(v, 0.99), v.Wait)
		}
	})
}
