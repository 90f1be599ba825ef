package enqueue_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// TestPutDeadLetterBound: at its limit the dead-letter queue refuses a new entry, loudly (an
// error and a counter), and never trims one that is there.
func TestPutDeadLetterBound(t *testing.T) {
	t.Parallel()
	_, mr, rc := miniClient(t)
	ctx := context.Background()
	letter := func(id string) enqueue.DeadLetter {
		return enqueue.DeadLetter{ID: id, Queue: "default", Payload: []byte(`{"v":1}`),
			Record: enqueue.Record{State: enqueue.StateDead}, DeadAt: time.Now().UTC()}
	}
	require.NoError(t, enqueue.PutDeadLetter(ctx, rc, letter("a"), 2))
	require.NoError(t, enqueue.PutDeadLetter(ctx, rc, letter("b"), 2))
	err := enqueue.PutDeadLetter(ctx, rc, letter("c"), 2)
	require.ErrorIs(t, err, enqueue.ErrDeadLetterFull)
	require.ErrorContains(t, err, "job c stays in asynq's archive")
	require.ErrorContains(t, err, "--dlq-limit")
	require.Equal(t, "1", mustGet(t, mr, keys.DeadLettersRefused))
	require.Equal(t, []string{"default/a", "default/b"}, hkeys(t, mr), "nothing trimmed")

	// A dead job redelivered rewrites its own entry at the limit too.
	again := letter("a")
	again.Record.Attempts = 7
	require.NoError(t, enqueue.PutDeadLetter(ctx, rc, again, 2))
	require.Contains(t, mr.HGet(keys.DeadLetters("default"), "default/a"), `"attempts":7`)

	// A lower limit than what is there refuses, never trims.
	require.ErrorIs(t, enqueue.PutDeadLetter(ctx, rc, letter("d"), 1), enqueue.ErrDeadLetterFull)
	require.Len(t, hkeys(t, mr), 2)
	require.Equal(t, "2", mustGet(t, mr, keys.DeadLettersRefused))

	// Limit 0: no bound.
	require.NoError(t, enqueue.PutDeadLetter(ctx, rc, letter("e"), 0))
	require.Len(t, hkeys(t, mr), 3)

	// The bound counts every queue's entries, each queue's in its own hash.
	low := letter("l")
	low.Queue = "low"
	require.ErrorIs(t, enqueue.PutDeadLetter(ctx, rc, low, 3), enqueue.ErrDeadLetterFull)
	require.NoError(t, enqueue.PutDeadLetter(ctx, rc, low, 4))
	n, err := enqueue.CountDeadLetters(ctx, rc)
	require.NoError(t, err)
	require.EqualValues(t, 4, n)
	lowKeys, err := mr.HKeys(keys.DeadLetters("low"))
	require.NoError(t, err)
	require.Equal(t, []string{"low/l"}, lowKeys)
}

func hkeys(t *testing.T, mr *miniredis.Miniredis) []string {
	t.Helper()
	keys, err := mr.HKeys(keys.DeadLetters("default"))
	require.NoError(t, err)
	return keys
}
