package attempt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestNotEarly checks a delay handed to asynq, which stores the next try's time in whole
// seconds rounded down, still holds in full: a retry never comes sooner than it was asked for.
func TestNotEarly(t *testing.T) {
	t.Parallel()
	base := time.Unix(1_700_000_000, 0)
	for _, frac := range []time.Duration{0, time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond} {
		for _, d := range []time.Duration{0, time.Second, 1500 * time.Millisecond, 5 * time.Second, 2 * time.Minute} {
			for _, dither := range []float64{0, 0.5, 0.999, -1, 7} {
				now := base.Add(frac)
				got := notEarly(now, d, dither)
				due := time.Unix(now.Add(got).Unix(), 0) // what asynq keeps: the Unix second
				require.False(t, due.Before(now.Add(d)), "now %s + %s: due %s, early", frac, d, due.Sub(now))
				require.Less(t, got-d, 2*time.Second, "stretched by two seconds or more")
				if dither <= 0 {
					require.Less(t, got-d, time.Second, "without dither, stretched by a second or more")
				}
			}
			// Without the stretch, asynq would bring the try up to a second early.
			if at := base.Add(frac).Add(d); at.Truncate(time.Second) != at {
				require.True(t, time.Unix(at.Unix(), 0).Before(at))
			}
		}
	}
}

// TestNotEarlyKeepsJitter is the lockstep that CI once caught: thirty jobs fail together just
// after a whole second and ask for their first retry's jittered 1-2 s. Rounded up alone, every
// one of them lands on the same whole second; dithered, they spread over at least two.
func TestNotEarlyKeepsJitter(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 10*int64(time.Millisecond))
	seconds := func(dither func(i int) float64) map[int64]int {
		due := map[int64]int{}
		for i := range 30 {
			j := float64(i) / 30
			d := testRules.policy.RetryDelay(0, j)
			due[now.Add(notEarly(now, d, dither(i))).Unix()]++
		}
		return due
	}
	require.Len(t, seconds(func(int) float64 { return 0 }), 1, "without dither: one second for all")
	spread := seconds(func(i int) float64 { return float64((i*7)%30) / 30 })
	require.GreaterOrEqual(t, len(spread), 2, "dithered: %v", spread)
	for _, n := range spread {
		require.Less(t, n, 25, "most jobs still on one second: %v", spread)
	}
}
