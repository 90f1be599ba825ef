package admin_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// Each queue's dead letters live under the queue's hash tag; the readers find them in every
// known queue.
func TestDeadLettersPerQueue(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	c, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	a, err := admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	ctx := context.Background()
	require.Equal(t, "solvequeue:{low}:dlq", keys.DeadLetters("low"))
	put := func(key string, d admin.DeadLetter) {
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, rc.HSet(ctx, key, keys.DeadLetterField(d.Queue, d.ID), raw).Err())
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, queuereg.Register(ctx, rc, "default", "low"))
	put(keys.DeadLetters("default"), admin.DeadLetter{ID: "d1", Queue: "default", DeadAt: at})
	put(keys.DeadLetters("low"), admin.DeadLetter{ID: "l1", Queue: "low", DeadAt: at.Add(time.Second)})
	require.NoError(t, queuereg.Register(ctx, rc, "old"))
	put(keys.DeadLetters("old"), admin.DeadLetter{ID: "o1", Queue: "old", DeadAt: at.Add(2 * time.Second)})
	put(keys.DeadLetters("old"), admin.DeadLetter{ID: "o2", Queue: "old", DeadAt: at.Add(3 * time.Second)})

	letters, err := a.DeadLetters(ctx)
	require.NoError(t, err)
	var ids []string
	for _, d := range letters {
		ids = append(ids, d.Queue+"/"+d.ID)
	}
	require.Equal(t, []string{"default/d1", "low/l1", "old/o1", "old/o2"}, ids, "oldest first, every queue")
	oldKeys, err := mr.HKeys(keys.DeadLetters("old"))
	require.NoError(t, err)
	require.Len(t, oldKeys, 2)

	d, err := a.DeadLetter(ctx, "", "l1")
	require.NoError(t, err)
	require.Equal(t, "low", d.Queue)
	_, err = a.DeadLetter(ctx, "default", "l1")
	require.ErrorIs(t, err, enqueue.ErrJobNotFound, "l1 is low's, not default's")
	out, err := c.Status(ctx, "o2")
	require.NoError(t, err)
	require.Equal(t, enqueue.StateDead, out.State)

	n, err := a.Purge(ctx, []admin.DeadLetter{d})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.False(t, mr.Exists(keys.DeadLetters("low")))
}
