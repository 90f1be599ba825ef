package enqueue_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
)

func TestKnownQueuesJoinsOursAndAsynqs(t *testing.T) {
	t.Parallel()
	c, mr, rc := miniClient(t)
	ctx := context.Background()
	queues, err := enqueue.KnownQueues(ctx, rc)
	require.NoError(t, err)
	require.Empty(t, queues)

	require.NoError(t, enqueue.RegisterQueues(ctx, rc, "critical", "default"))
	_, err = c.Submit(ctx, enqueue.Job{ID: "a", Queue: "low", Task: website("RecaptchaV2TaskProxyless")})
	require.NoError(t, err)
	_, err = mr.SAdd("asynq:queues", "bad queue{x}") // another application's: never one of ours
	require.NoError(t, err)
	queues, err = enqueue.KnownQueues(ctx, rc)
	require.NoError(t, err)
	require.Equal(t, []string{"critical", "default", "low"}, queues)
}

// Queue names with a brace are refused everywhere a name comes in: they would change the
// Redis Cluster hash tag asynq and solvequeue put around a queue's name (asynq issue #480).
func TestQueueNamesWithBracesAreRefused(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"{a}", "a{", "a}", "x{y}z", "{}"} {
		require.False(t, enqueue.ValidQueueName(q), q)
		err := enqueue.Job{Queue: q, Task: website("RecaptchaV2TaskProxyless")}.Validate()
		var ve *enqueue.ValidationError
		require.ErrorAs(t, err, &ve, q)
		require.Equal(t, "queue", ve.Field)
	}
	require.True(t, enqueue.ValidQueueName("tenant-1.high:q_2"))
}

// Each queue's dead letters live under the queue's hash tag; the readers find them in every
// known queue.
func TestDeadLettersPerQueue(t *testing.T) {
	t.Parallel()
	c, mr, rc := miniClient(t)
	ctx := context.Background()
	require.Equal(t, "solvequeue:{low}:dlq", keys.DeadLetters("low"))
	put := func(key string, d enqueue.DeadLetter) {
		raw, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, rc.HSet(ctx, key, keys.DeadLetterField(d.Queue, d.ID), raw).Err())
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	require.NoError(t, enqueue.RegisterQueues(ctx, rc, "default", "low"))
	put(keys.DeadLetters("default"), enqueue.DeadLetter{ID: "d1", Queue: "default", DeadAt: at})
	put(keys.DeadLetters("low"), enqueue.DeadLetter{ID: "l1", Queue: "low", DeadAt: at.Add(time.Second)})
	require.NoError(t, enqueue.RegisterQueues(ctx, rc, "old"))
	put(keys.DeadLetters("old"), enqueue.DeadLetter{ID: "o1", Queue: "old", DeadAt: at.Add(2 * time.Second)})
	put(keys.DeadLetters("old"), enqueue.DeadLetter{ID: "o2", Queue: "old", DeadAt: at.Add(3 * time.Second)})

	letters, err := c.DeadLetters(ctx)
	require.NoError(t, err)
	var ids []string
	for _, d := range letters {
		ids = append(ids, d.Queue+"/"+d.ID)
	}
	require.Equal(t, []string{"default/d1", "low/l1", "old/o1", "old/o2"}, ids, "oldest first, every queue")
	oldKeys, err := mr.HKeys(keys.DeadLetters("old"))
	require.NoError(t, err)
	require.Len(t, oldKeys, 2)

	d, err := c.DeadLetter(ctx, "", "l1")
	require.NoError(t, err)
	require.Equal(t, "low", d.Queue)
	_, err = c.DeadLetter(ctx, "default", "l1")
	require.ErrorIs(t, err, enqueue.ErrJobNotFound, "l1 is low's, not default's")
	out, err := c.Status(ctx, "o2")
	require.NoError(t, err)
	require.Equal(t, enqueue.StateDead, out.State)

	n, err := c.Purge(ctx, []enqueue.DeadLetter{d})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.False(t, mr.Exists(keys.DeadLetters("low")))
}
