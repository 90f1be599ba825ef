package enqueue_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// bigImage is a base64 image body over BodyInlineMaxDefault, different for each seed.
func bigImage(seed string) string {
	return strings.Repeat("QUJD", enqueue.BodyInlineMaxDefault/4) + strings.Repeat("RUZH", 4) + seedB64(seed)
}

func seedB64(seed string) string {
	var b strings.Builder
	for _, r := range seed {
		fmt.Fprintf(&b, "%c%c%c%c", 'A'+r%26, 'A'+r%26, 'A'+r%26, 'A'+r%26)
	}
	return b.String()
}

func imageJob(id, body string) enqueue.Job {
	return enqueue.Job{ID: id, Task: map[string]any{"type": "ImageToTextTask", "body": body}}
}

func blobKeys(mr *miniredis.Miniredis) []string {
	var out []string
	for _, k := range mr.Keys() {
		if strings.HasPrefix(k, keys.BodyPrefix) {
			out = append(out, k)
		}
	}
	return out
}

func bodyRefOf(t *testing.T, rc redis.UniversalClient, id string) string {
	t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(enqueue.DefaultQueue, id)
	require.NoError(t, err)
	p, err := jobwire.DecodePayload(info.Payload)
	require.NoError(t, err)
	return p.BodyRef
}

// TestBodyOnlyWhenTheJobGoesIn is the review's case: resubmitting an ID with a new body kept the
// job as it was and left the new body behind for 7 days.
func TestBodyOnlyWhenTheJobGoesIn(t *testing.T) {
	t.Parallel()
	c, mr, rc := miniClient(t)
	ctx := context.Background()

	sub, err := c.SubmitJob(ctx, imageJob("img-1", bigImage("a")))
	require.NoError(t, err)
	require.False(t, sub.Existing)
	ref := bodyRefOf(t, rc, "img-1")
	require.True(t, keys.IsBody(ref))
	require.Equal(t, keys.Body(enqueue.DefaultQueue, "img-1", bigImage("a")), ref)
	require.Contains(t, ref, "{default}", "the queue's hash tag: the body lives in its queue's slot")
	require.Equal(t, []string{ref}, blobKeys(mr))
	require.Equal(t, enqueue.BlobTTLDefault, mr.TTL(ref))

	// Another body under the same ID: the first job stays, and no second body is left behind.
	sub, err = c.SubmitJob(ctx, imageJob("img-1", bigImage("b")))
	require.NoError(t, err)
	require.True(t, sub.Existing)
	require.Equal(t, []string{ref}, blobKeys(mr))
	// Through SubmitMany too.
	results, err := c.SubmitMany(ctx, []enqueue.Job{imageJob("img-1", bigImage("c")), imageJob("img-1", bigImage("d"))}, 2, nil)
	require.NoError(t, err)
	for _, r := range results {
		require.NoError(t, r.Err)
		require.True(t, r.Submitted.Existing)
	}
	require.Equal(t, []string{ref}, blobKeys(mr))

	// The same body again keeps the job's body (and its TTL).
	mr.FastForward(time.Hour)
	sub, err = c.SubmitJob(ctx, imageJob("img-1", bigImage("a")))
	require.NoError(t, err)
	require.True(t, sub.Existing)
	require.Equal(t, []string{ref}, blobKeys(mr))
	require.Equal(t, bigImage("a"), mustGet(t, mr, ref))

	// Two jobs with one body have a body each: ending one never takes the other's.
	_, err = c.Submit(ctx, imageJob("img-2", bigImage("a")))
	require.NoError(t, err)
	require.NotEqual(t, ref, bodyRefOf(t, rc, "img-2"))
	require.Len(t, blobKeys(mr), 2)
}

func mustGet(t *testing.T, mr *miniredis.Miniredis, key string) string {
	t.Helper()
	v, err := mr.Get(key)
	require.NoError(t, err)
	return v
}

// TestBodyConcurrentSubmits: one job submitted many times at once, some with other bodies, ends
// with exactly its own body in Redis.
func TestBodyConcurrentSubmits(t *testing.T) {
	t.Parallel()
	c, mr, rc := miniClient(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := bigImage("same")
			if i%3 == 0 {
				body = bigImage(fmt.Sprint("other", i))
			}
			_, err := c.Submit(ctx, imageJob("img-race", body))
			require.NoError(t, err)
		}()
	}
	wg.Wait()
	ref := bodyRefOf(t, rc, "img-race")
	require.Equal(t, []string{ref}, blobKeys(mr), "only the body of the job that went in")
}

func TestBodyTTLFollowsTheDeadline(t *testing.T) {
	t.Parallel()
	c, mr, rc := miniClient(t)
	job := imageJob("img-dl", bigImage("dl"))
	job.Deadline = "30m"
	_, err := c.Submit(context.Background(), job)
	require.NoError(t, err)
	ttl := mr.TTL(bodyRefOf(t, rc, "img-dl"))
	// Until one attempt after the deadline: no AnySolver task is created after it.
	require.InDelta(t, (30*time.Minute + enqueue.AttemptTimeoutDefault).Seconds(), ttl.Seconds(), 5)
}

// TestBodyOfADeadLetter: the worker keeps a dead job's body without a TTL (imagebody.Keep), a redrive
// gives the TTL back, a purge deletes it, and a redrive whose body is gone is refused.
func TestBodyOfADeadLetter(t *testing.T) {
	t.Parallel()
	c, mr, rc := miniClient(t)
	a, err := admin.NewClient(admin.Config{Redis: rc})
	require.NoError(t, err)
	ctx := context.Background()
	die := func(id string) admin.DeadLetter {
		t.Helper()
		_, err := c.Submit(ctx, imageJob(id, bigImage(id)))
		require.NoError(t, err)
		info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(enqueue.DefaultQueue, id)
		require.NoError(t, err)
		require.NoError(t, asynq.NewInspectorFromRedisClient(rc).DeleteTask(enqueue.DefaultQueue, id)) // as if archived and trimmed
		d := admin.DeadLetter{ID: id, Queue: enqueue.DefaultQueue, Payload: info.Payload,
			Record: jobwire.Record{State: enqueue.StateDead}, DeadAt: time.Now()}
		data, err := json.Marshal(d)
		require.NoError(t, err)
		require.NoError(t, rc.HSet(ctx, keys.DeadLetters(d.Queue), keys.DeadLetterField(d.Queue, id), data).Err())
		require.NoError(t, imagebody.Keep(ctx, rc, bodyRefFromPayload(t, info.Payload)))
		return d
	}

	redriven := die("dead-redrive")
	ref := bodyRefFromPayload(t, redriven.Payload)
	require.Equal(t, time.Duration(0), mr.TTL(ref), "no TTL while dead")
	require.NoError(t, a.Redrive(ctx, redriven))
	require.Equal(t, enqueue.BlobTTLDefault, mr.TTL(ref))
	require.Equal(t, ref, bodyRefOf(t, rc, "dead-redrive"))

	purged := die("dead-purge")
	n, err := a.Purge(ctx, []admin.DeadLetter{purged})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.False(t, mr.Exists(bodyRefFromPayload(t, purged.Payload)))

	gone := die("dead-gone")
	mr.Del(bodyRefFromPayload(t, gone.Payload))
	require.ErrorContains(t, a.Redrive(ctx, gone), "image body is gone")
	_, err = a.DeadLetter(ctx, enqueue.DefaultQueue, "dead-gone")
	require.NoError(t, err, "the refused redrive keeps the dead letter")

	require.NoError(t, imagebody.Drop(ctx, rc, ref))
	require.False(t, mr.Exists(ref))
}

func bodyRefFromPayload(t *testing.T, payload []byte) string {
	t.Helper()
	p, err := jobwire.DecodePayload(payload)
	require.NoError(t, err)
	require.NotEmpty(t, p.BodyRef)
	return p.BodyRef
}
