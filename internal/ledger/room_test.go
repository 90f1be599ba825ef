package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// TestSettleCountsOnce settles the same reservation twice, as a job whose terminal record could
// not be saved does when it runs again and resumes its recorded remote task: the second settle
// changes nothing, neither the window's money nor the task type's average.
func TestSettleCountsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cost float64 // what AnySolver reported
		want float64 // the window's money after both settles
	}{
		{"cheaper than reserved", 0.001, 0.001},
		{"dearer than reserved", 0.005, 0.005},
		{"nothing created", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, _, _ := clocked(t)
			ctx := context.Background()
			b := policyfile.Budget{Window: time.Hour, MaxCost: 1, EstimatedCost: 0.002}
			r, ok, _, err := l.Reserve(ctx, "q", b, "TurnstileToken")
			require.NoError(t, err)
			require.True(t, ok)

			settled, err := l.Settle(ctx, "q", r, tt.cost)
			require.NoError(t, err)
			require.True(t, settled, "the first settle counts")
			before, err := l.Read(ctx, "q", b)
			require.NoError(t, err)
			settled, err = l.Settle(ctx, "q", r, tt.cost)
			require.NoError(t, err)
			require.False(t, settled, "the second settle of the same reservation does not")

			u, err := l.Read(ctx, "q", b)
			require.NoError(t, err)
			require.Equal(t, before, u)
			require.InDelta(t, tt.want, u.Cost, 1e-9)
			require.Equal(t, int64(1), u.CreateTasks)
		})
	}
}

// TestSettleOfAnotherReservationStillCounts: reservations are told apart by their ids, so a
// settle of one never stands in for another's, even in the same bucket.
func TestSettleOfAnotherReservationStillCounts(t *testing.T) {
	t.Parallel()
	l, _, _ := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Hour, MaxCost: 1, EstimatedCost: 0.002}
	r1, _, _, err := l.Reserve(ctx, "q", b, "T")
	require.NoError(t, err)
	r2, _, _, err := l.Reserve(ctx, "q", b, "T")
	require.NoError(t, err)
	require.NotEqual(t, r1.ID, r2.ID)
	require.Equal(t, r1.Bucket, r2.Bucket)
	for _, r := range []ledger.Reservation{r1, r1, r2, r2} {
		_, err := l.Settle(ctx, "q", r, 0.003)
		require.NoError(t, err)
	}
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.InDelta(t, 0.006, u.Cost, 1e-9, "two tasks at 0.003 each, each counted once")
}

// watcherTicks runs the budget watcher's resume as many times as ticks, and after each resume
// lets one worker fetch a job of taskType from the queue and reserve its createTask, pausing the
// queue again when the budget refuses it (what the worker's handler does). It returns how often
// the queue was resumed and paused.
func watcherTicks(t *testing.T, l *ledger.Ledger, b policyfile.Budget, taskType string, ticks int) (resumes, pauses int) {
	t.Helper()
	ctx := context.Background()
	for range ticks {
		resumed, err := l.ResumeIfRoom(ctx, "q", b)
		require.NoError(t, err)
		if !resumed {
			continue
		}
		resumes++
		_, ok, _, err := l.Reserve(ctx, "q", b, taskType)
		require.NoError(t, err)
		if !ok {
			paused, err := l.Pause(ctx, "q")
			require.NoError(t, err)
			if paused {
				pauses++
			}
		}
	}
	return resumes, pauses
}

// TestOneRuleForRoom: the reservation, the watcher's resume and the gateway's answer (Usage.Room)
// agree on whether one more createTask fits, at the dearest task type's observed cost, even when
// estimatedCost is lower. With a sliver of room under that cost the queue stays paused through
// many watcher ticks (no pause/resume flapping) and Room is false; once a settlement leaves room
// for exactly one, the watcher resumes and the next reservation succeeds.
func TestOneRuleForRoom(t *testing.T) {
	t.Parallel()
	l, _, _ := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Hour, MaxCost: 0.012, EstimatedCost: 0.002}

	dear, ok, _, err := l.Reserve(ctx, "q", b, "ReCaptchaV2Token")
	require.NoError(t, err)
	require.True(t, ok)
	cheap, ok, _, err := l.Reserve(ctx, "q", b, "ImageToTextTask")
	require.NoError(t, err)
	require.True(t, ok)
	_, err = l.Settle(ctx, "q", dear, 0.006) // reCAPTCHA costs three times the estimate
	require.NoError(t, err)

	// 0.008 spent, 0.004 left: more than estimatedCost, less than a reCAPTCHA.
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.InDelta(t, 0.004, u.RemainingCost, 1e-9)
	require.InDelta(t, 0.006, u.Estimate, 1e-9, "the dearest type seen")
	require.False(t, u.Room)
	require.True(t, u.Spent(), "the gateway answers ERROR_ZERO_BALANCE")
	_, ok, _, err = l.Reserve(ctx, "q", b, "ReCaptchaV2Token")
	require.NoError(t, err)
	require.False(t, ok, "a reCAPTCHA job is held")
	paused, err := l.Pause(ctx, "q")
	require.NoError(t, err)
	require.True(t, paused)

	resumes, pauses := watcherTicks(t, l, b, "ReCaptchaV2Token", 10)
	require.Zero(t, resumes, "ten ticks with a sliver of room: the queue stays paused")
	require.Zero(t, pauses)
	u, err = l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, u.Paused)

	// The image task's createTask was refused by AnySolver: it costs nothing, and 0.006 is
	// room for exactly one reCAPTCHA.
	_, err = l.Settle(ctx, "q", cheap, 0)
	require.NoError(t, err)
	u, err = l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, u.Room, "the gateway accepts")
	resumes, pauses = watcherTicks(t, l, b, "ReCaptchaV2Token", 10)
	require.Equal(t, 1, resumes, "the watcher resumes once, and the job it lets through fits")
	require.Zero(t, pauses)
	u, err = l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.InDelta(t, 0.012, u.Cost, 1e-9)
	require.False(t, u.Room, "that reCAPTCHA took the last of the room")
}

// TestEmptyWindowAlwaysHasRoom: a task type whose cost is more than the whole cap holds its
// queue only until the window empties, never for ever: its estimate is capped at maxCost.
func TestEmptyWindowAlwaysHasRoom(t *testing.T) {
	t.Parallel()
	l, mr, _ := clocked(t)
	ctx := context.Background()
	b := policyfile.Budget{Window: time.Hour, MaxCost: 0.01, EstimatedCost: 0.002}
	r, ok, _, err := l.Reserve(ctx, "q", b, "T")
	require.NoError(t, err)
	require.True(t, ok)
	_, err = l.Settle(ctx, "q", r, 0.05)
	require.NoError(t, err)
	_, ok, _, err = l.Reserve(ctx, "q", b, "T")
	require.NoError(t, err)
	require.False(t, ok)
	paused, err := l.Pause(ctx, "q")
	require.NoError(t, err)
	require.True(t, paused)

	mr.SetTime(time.Date(2026, 11, 30, 13, 1, 2, 0, time.UTC)) // the spend has left the window
	u, err := l.Read(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, u.Room)
	require.InDelta(t, 0.01, u.Estimate, 1e-9, "capped at maxCost")
	resumed, err := l.ResumeIfRoom(ctx, "q", b)
	require.NoError(t, err)
	require.True(t, resumed)
	r, ok, _, err = l.Reserve(ctx, "q", b, "T")
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, int64(10_000), r.Micros)
}
