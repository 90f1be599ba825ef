package classify_test

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
)

func TestRetryDelay(t *testing.T) {
	t.Parallel()

	custom, err := classify.New(classify.Settings{Name: "fast", BaseDelay: time.Second, MaxDelay: 10 * time.Second})
	require.NoError(t, err)
	tests := []struct {
		name      string
		p         *classify.Policy
		base, cap time.Duration
	}{
		{"default", classify.Default(), 2 * time.Second, 2 * time.Minute},
		{"custom", custom, time.Second, 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for _, j := range []float64{0, 0.5, 0.999} {
				prev := time.Duration(0)
				for n := 0; n < 40; n++ {
					d := tt.p.RetryDelay(n, j)
					full := min(tt.cap, tt.base*time.Duration(1<<min(n, 30)))
					require.GreaterOrEqual(t, d, full/2, "n=%d jitter=%v", n, j)
					require.LessOrEqual(t, d, full, "n=%d jitter=%v", n, j)
					require.GreaterOrEqual(t, d, prev, "n=%d jitter=%v: never shrinks", n, j)
					prev = d
				}
				require.LessOrEqual(t, tt.p.RetryDelay(math.MaxInt, j), tt.cap)
			}
			require.Equal(t, tt.base/2, tt.p.RetryDelay(0, 0))
			require.Equal(t, tt.base, tt.p.RetryDelay(1, 0), "doubles")
			require.Equal(t, tt.cap/2, tt.p.RetryDelay(1000, 0), "capped")
		})
	}
}

func TestRetryDelayOddInputs(t *testing.T) {
	t.Parallel()

	p := classify.Default()
	// By default the first retry follows AnySolver's advice of 1-5 s.
	require.Equal(t, time.Second, p.RetryDelay(0, 0))
	require.LessOrEqual(t, p.RetryDelay(0, 0.999), 2*time.Second)
	require.Equal(t, p.RetryDelay(0, 0), p.RetryDelay(-5, 0))
	require.Equal(t, p.RetryDelay(2, 0), p.RetryDelay(2, math.NaN()))
	require.Equal(t, p.RetryDelay(2, 0), p.RetryDelay(2, -3))
	require.Less(t, p.RetryDelay(2, 7), 8*time.Second)
	require.Less(t, p.RetryDelay(2, math.Inf(1)), 8*time.Second)
}

func TestThrottleDelay(t *testing.T) {
	t.Parallel()

	tight, err := classify.New(classify.Settings{Name: "tight", MinWait: time.Second, MaxWait: 6 * time.Second})
	require.NoError(t, err)
	slow, err := classify.New(classify.Settings{Name: "slow", MinWait: 30 * time.Second, MaxWait: 2 * time.Minute})
	require.NoError(t, err)
	inputs := []classify.Error{
		{ErrorID: 1, ErrorCode: "RATE_LIMITED"},
		{ErrorID: 2, ErrorCode: "PROVIDER_RATE_LIMITED"},
		{ErrorID: 2, ErrorCode: "PROVIDER_GLOBAL_LIMIT_REACHED"},
		{Failure: classify.FailureHTTPStatus, HTTPStatus: 429},
	}
	for _, p := range []*classify.Policy{classify.Default(), tight, slow} {
		for _, e := range inputs {
			v := p.Classify(e)
			require.Equal(t, classify.Throttle, v.Decision)
			require.GreaterOrEqual(t, v.Wait, 5*time.Second, "%s under %s", v.Code, p.Name())
			for _, j := range []float64{0, 0.5, 0.999, math.NaN(), 2} {
				d := p.ThrottleDelay(v, j)
				require.GreaterOrEqual(t, d, v.Wait, "%s under %s, jitter %v", v.Code, p.Name(), j)
				require.LessOrEqual(t, d, max(v.Wait*3/2, v.Wait))
			}
		}
	}

	p := classify.Default()
	rl := p.Classify(classify.Error{ErrorCode: "RATE_LIMITED"})
	require.Equal(t, 5*time.Second, p.ThrottleDelay(rl, 0))
	require.Equal(t, 6*time.Second+250*time.Millisecond, p.ThrottleDelay(rl, 0.5), "plus up to half of the wait")
	require.Equal(t, 30*time.Second, slow.Classify(classify.Error{ErrorCode: "RATE_LIMITED"}).Wait)

	// Capped by maxWait, but never below the verdict's own wait (a Retry-After, say).
	require.Equal(t, time.Minute, p.ThrottleDelay(classify.Verdict{Decision: classify.Throttle, Wait: 50 * time.Second}, 0.9))
	require.Equal(t, 5*time.Minute, p.ThrottleDelay(classify.Verdict{Decision: classify.Throttle, Wait: 5 * time.Minute}, 0.9))
	require.Equal(t, time.Duration(math.MaxInt64), p.ThrottleDelay(classify.Verdict{Wait: math.MaxInt64}, 0.9))
	// A verdict without a wait still waits the policy's minimum.
	require.GreaterOrEqual(t, p.ThrottleDelay(classify.Verdict{}, 0), 5*time.Second)
}

func BenchmarkRetryDelay(b *testing.B) {
	p := classify.Default()
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		_ = p.RetryDelay(n%12, 0.37)
		n++
	}
}
