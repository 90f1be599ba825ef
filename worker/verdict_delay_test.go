package worker

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
			now := base.Add(frac)
			got := notEarly(now, d)
			due := time.Unix(now.Add(got).Unix(), 0) // what asynq keeps: the Unix second
			require.False(t, due.Before(now.Add(d)), "now %s + %s: due %s, early", frac, d, due.Sub(now))
			require.Less(t, got-d, time.Second, "stretched by a second or more")
			// Without the stretch, asynq would bring the try up to a second early.
			if at := now.Add(d); at.Truncate(time.Second) != at {
				require.True(t, time.Unix(at.Unix(), 0).Before(at))
			}
		}
	}
}
