package deadletter_test

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// TestPutDeadLetterBound: at its limit the dead-letter queue refuses a new entry, loudly (an
// error and a counter), and never trims one that is there.
func TestPutDeadLetterBound(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	ctx := context.Background()
	letter := func(id string) deadletter.Letter {
		return deadletter.Letter{ID: id, Queue: "default", Payload: []byte(`{"v":1}`),
			Record: jobwire.Record{State: jobwire.StateDead}, DeadAt: time.Now().UTC()}
	}
	require.NoError(t, deadletter.Put(ctx, rc, letter("a"), 2))
	require.NoError(t, deadletter.Put(ctx, rc, letter("b"), 2))
	err := deadletter.Put(ctx, rc, letter("c"), 2)
	require.ErrorIs(t, err, deadletter.ErrFull)
	require.ErrorContains(t, err, "job c stays in asynq's archive")
	require.ErrorContains(t, err, "--dlq-limit")
	refused, err := mr.Get(keys.DeadLettersRefused)
	require.NoError(t, err)
	require.Equal(t, "1", refused)
	require.Equal(t, []string{"default/a", "default/b"}, hkeys(t, mr), "nothing trimmed")

	// A dead job redelivered rewrites its own entry at the limit too.
	again := letter("a")
	again.Record.Attempts = 7
	require.NoError(t, deadletter.Put(ctx, rc, again, 2))
	require.Contains(t, mr.HGet(keys.DeadLetters("default"), "default/a"), `"attempts":7`)

	// A lower limit than what is there refuses, never trims.
	require.ErrorIs(t, deadletter.Put(ctx, rc, letter("d"), 1), deadletter.ErrFull)
	require.Len(t, hkeys(t, mr), 2)
	refused, err = mr.Get(keys.DeadLettersRefused)
	require.NoError(t, err)
	require.Equal(t, "2", refused)

	// Limit 0: no bound.
	require.NoError(t, deadletter.Put(ctx, rc, letter("e"), 0))
	require.Len(t, hkeys(t, mr), 3)

	// The bound counts every queue's entries, each queue's in its own hash.
	low := letter("l")
	low.Queue = "low"
	require.ErrorIs(t, deadletter.Put(ctx, rc, low, 3), deadletter.ErrFull)
	require.NoError(t, deadletter.Put(ctx, rc, low, 4))
	n, err := deadletter.Count(ctx, rc)
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
