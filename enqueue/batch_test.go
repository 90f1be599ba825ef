package enqueue_test

import (
	"context"
	"encoding/json"
	"errors"
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
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

const (
	goodLine  = `{"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example","websiteKey":"6Le-a"}}`
	otherLine = `{"task":{"type":"TurnstileToken","websiteURL":"https://b.example","websiteKey":"0x4B"}}`
)

func TestReadJobs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		file      string
		wantLines []int    // lines of the jobs read
		wantIDs   []string // IDs given in the file ("" for a derived one)
		wantBad   []string // "line N: field" of every bad line, in order
	}{
		{name: "blank and comment lines are skipped",
			file:      "# jobs for today\n\n" + goodLine + "\n   \n\t# another comment\n" + otherLine + "\n",
			wantLines: []int{3, 6}, wantIDs: []string{"", ""}},
		{name: "no trailing newline, CRLF endings", file: goodLine + "\r\n" + otherLine,
			wantLines: []int{1, 2}, wantIDs: []string{"", ""}},
		{name: "given IDs are kept", file: `{"id":"order-1","task":{"type":"X"}}` + "\n" + goodLine,
			wantLines: []int{1, 2}, wantIDs: []string{"order-1", ""}},
		{name: "empty file", file: "", wantLines: nil},
		{name: "only comments", file: "# nothing\n\n", wantLines: nil},
		{name: "every bad line is listed with its line number and field",
			file: goodLine + "\n" +
				`{"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://a.example"}}` + "\n" + // 2: no websiteKey
				"# fine\n" +
				`{"task":{"type":"X"},"colour":"red"}` + "\n" + // 4: unknown field
				`{"task":{"type":"X"}` + "\n" + // 5: truncated
				otherLine + "\n" +
				`{"queue":"a b","task":{"type":"X"}}` + "\n" + // 7: queue
				`{"deadline":"whenever","task":{"type":"X"}}` + "\n" + // 8: deadline
				`{"task":{"type":"ImageToTextTask","body":"%%%"}}` + "\n", // 9: body
			wantBad: []string{"line 2: task.websiteKey", "line 4: colour", "line 5: (line)", "line 7: queue", "line 8: deadline", "line 9: task.body"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			jobs, err := enqueue.ReadJobs(strings.NewReader(tt.file))
			if tt.wantBad != nil {
				require.Nil(t, jobs, "a bad file is refused whole")
				var batchErr *enqueue.BatchError
				require.ErrorAs(t, err, &batchErr)
				var got []string
				for _, l := range batchErr.Lines {
					var verr *enqueue.ValidationError
					require.ErrorAs(t, l, &verr)
					got = append(got, fmt.Sprintf("line %d: %s", l.Line, verr.Field))
					require.Contains(t, err.Error(), l.Error(), "the message lists every bad line")
				}
				require.Equal(t, tt.wantBad, got)
				require.Contains(t, err.Error(), fmt.Sprintf("%d bad line(s), nothing submitted", len(tt.wantBad)))
				return
			}
			require.NoError(t, err)
			require.Len(t, jobs, len(tt.wantLines))
			for i, j := range jobs {
				require.Equal(t, tt.wantLines[i], j.Line)
				require.NoError(t, j.Job.Validate())
				if tt.wantIDs[i] != "" {
					require.Equal(t, tt.wantIDs[i], j.Job.ID)
				} else {
					require.Regexp(t, fmt.Sprintf(`^line-%d-[0-9a-f]{20}$`, j.Line), j.Job.ID)
				}
			}
		})
	}
}

func TestReadJobsListsAtMostTwentyLinesInItsMessage(t *testing.T) {
	t.Parallel()
	file := strings.Repeat(`{"task":{}}`+"\n", 25)
	_, err := enqueue.ReadJobs(strings.NewReader(file))
	var batchErr *enqueue.BatchError
	require.ErrorAs(t, err, &batchErr)
	require.Len(t, batchErr.Lines, 25, "every bad line is kept")
	require.Contains(t, err.Error(), "line 20: task.type")
	require.NotContains(t, err.Error(), "line 21:")
	require.Contains(t, err.Error(), "... and 5 more")
}

func TestReadJobsLineTooLong(t *testing.T) {
	t.Parallel()
	long := `{"task":{"type":"ImageToTextTask","body":"` + strings.Repeat("A", enqueue.MaxLineBytes) + `"}}`
	_, err := enqueue.ReadJobs(strings.NewReader(goodLine + "\n" + long + "\n"))
	var batchErr *enqueue.BatchError
	require.ErrorAs(t, err, &batchErr)
	require.Len(t, batchErr.Lines, 1)
	require.Equal(t, 2, batchErr.Lines[0].Line)
	require.Contains(t, err.Error(), "longer than")
}

// TestReadJobsDerivedIDs checks what makes a batch resumable: a line without an ID gets the
// same ID on every read of the same file, and different lines get different IDs, even when
// their text is the same.
func TestReadJobsDerivedIDs(t *testing.T) {
	t.Parallel()
	file := goodLine + "\n" + goodLine + "\n" + otherLine + "\n"
	read := func(file string) []string {
		jobs, err := enqueue.ReadJobs(strings.NewReader(file))
		require.NoError(t, err)
		ids := make([]string, len(jobs))
		for i, j := range jobs {
			ids[i] = j.Job.ID
		}
		return ids
	}
	first := read(file)
	require.Equal(t, first, read(file), "the same file gives the same IDs")
	require.Len(t, first, 3)
	require.NotEqual(t, first[0], first[1], "identical lines still are two jobs")
	require.NotEqual(t, first[1], first[2])
	require.Equal(t, first, read(strings.ReplaceAll(file, "\n", "  \r\n")), "white space around a line does not change its ID")
	require.Equal(t, first[:2], read(goodLine + "\n" + goodLine + "\n" + `{"task":{"type":"X"}}`)[:2],
		"changing one line does not change the IDs of the others")
}

// miniClient is a producer on an in-process Redis.
func miniClient(t *testing.T) (*enqueue.Client, *miniredis.Miniredis, redis.UniversalClient) {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	c, err := enqueue.NewClient(enqueue.Config{Redis: rc})
	require.NoError(t, err)
	return c, mr, rc
}

func recaptchaJob(id string) enqueue.Job {
	return enqueue.Job{ID: id, Task: website("RecaptchaV2TaskProxyless")}
}

func TestSubmitIsIdempotent(t *testing.T) {
	t.Parallel()
	c, _, rc := miniClient(t)
	ctx := context.Background()

	first, err := c.SubmitJob(ctx, recaptchaJob("order-1"))
	require.NoError(t, err)
	require.Equal(t, enqueue.Submitted{ID: "order-1", Queue: enqueue.DefaultQueue}, first)

	again, err := c.SubmitJob(ctx, recaptchaJob("order-1"))
	require.NoError(t, err, "the same ID again is not an error")
	require.Equal(t, enqueue.Submitted{ID: "order-1", Queue: enqueue.DefaultQueue, Existing: true}, again)

	id, err := c.Submit(ctx, recaptchaJob("order-1"))
	require.NoError(t, err)
	require.Equal(t, "order-1", id)

	other, err := c.SubmitJob(ctx, enqueue.Job{ID: "order-1", Queue: "low", Task: website("TurnstileToken")})
	require.NoError(t, err)
	require.False(t, other.Existing, "IDs are per queue")

	pending, err := asynq.NewInspectorFromRedisClient(rc).ListPendingTasks(enqueue.DefaultQueue)
	require.NoError(t, err)
	require.Len(t, pending, 1, "one task however often it was submitted")
	require.Equal(t, jobwire.TaskType, pending[0].Type)

	out, err := c.Status(ctx, "order-1")
	require.NoError(t, err)
	require.Equal(t, enqueue.StatePending, out.State)
}

func TestSubmitWithoutIDGetsAFreshOne(t *testing.T) {
	t.Parallel()
	c, _, _ := miniClient(t)
	ctx := context.Background()
	a, err := c.Submit(ctx, recaptchaJob(""))
	require.NoError(t, err)
	b, err := c.Submit(ctx, recaptchaJob(""))
	require.NoError(t, err)
	require.NotEmpty(t, a)
	require.NotEqual(t, a, b)
}

func TestSubmitRefusesABadJobBeforeRedis(t *testing.T) {
	t.Parallel()
	c, mr, _ := miniClient(t)
	_, err := c.Submit(context.Background(), enqueue.Job{ID: "bad", Task: map[string]any{"type": "HCaptchaTaskProxyless"}})
	var verr *enqueue.ValidationError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, "task.websiteURL", verr.Field)
	require.Empty(t, mr.Keys(), "nothing reached Redis")
}

// TestSubmitPayload checks what the worker will read: no ID or queue inside, the deadline
// resolved, and a large image body stored under its own key so that asynq's heartbeat, which
// rewrites every active task with its payload, stays cheap.
func TestSubmitPayload(t *testing.T) {
	t.Parallel()
	c, _, rc := miniClient(t)
	ctx := context.Background()
	bigBody := strings.Repeat("QUJD", enqueue.BodyInlineMaxDefault/4+1)
	tests := []struct {
		name        string
		job         enqueue.Job
		wantBodyRef bool
	}{
		{name: "small body inline", job: enqueue.Job{ID: "img-small", Deadline: "10m", Task: map[string]any{"type": "ImageToTextTask", "body": "QUJD"}}},
		{name: "large body by reference", job: enqueue.Job{ID: "img-big", Task: map[string]any{"type": "ImageToTextTask", "body": bigBody}}, wantBodyRef: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.Submit(ctx, tt.job)
			require.NoError(t, err)
			info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(enqueue.DefaultQueue, tt.job.ID)
			require.NoError(t, err)
			p, err := jobwire.DecodePayload(info.Payload)
			require.NoError(t, err)
			require.Equal(t, jobwire.PayloadVersion, p.V)
			require.False(t, p.SubmittedAt.IsZero())
			// asynq keeps the ID; the payload does not repeat it, but for the image body's key,
			// which names its job so that a sweep can tell whose body it is.
			require.NotContains(t, strings.Replace(string(info.Payload), p.BodyRef, "", 1), tt.job.ID,
				"asynq keeps the ID; the payload does not repeat it")
			if tt.job.Deadline != "" {
				require.WithinDuration(t, p.SubmittedAt.Add(10*time.Minute), p.Deadline, 0)
			}
			if !tt.wantBodyRef {
				require.Empty(t, p.BodyRef)
				require.Equal(t, tt.job.Task["body"], p.Task["body"])
				return
			}
			require.Less(t, len(info.Payload), 1024, "the payload stays small")
			require.NotContains(t, p.Task, "body")
			require.True(t, strings.HasPrefix(p.BodyRef, keys.BodyPrefix))
			stored, err := rc.Get(ctx, p.BodyRef).Result()
			require.NoError(t, err)
			require.Equal(t, bigBody, stored)
			require.Equal(t, bigBody, tt.job.Task["body"], "the caller's job is not changed")
		})
	}
}

func TestSubmitMany(t *testing.T) {
	t.Parallel()
	c, _, rc := miniClient(t)
	ctx := context.Background()
	jobs := make([]enqueue.Job, 50)
	for i := range jobs {
		jobs[i] = recaptchaJob(fmt.Sprintf("many-%02d", i))
	}
	var mu sync.Mutex
	seen := map[int]bool{}
	results, err := c.SubmitMany(ctx, jobs, 8, func(r enqueue.SubmitResult) {
		mu.Lock()
		defer mu.Unlock()
		require.False(t, seen[r.Index], "onEach once per job")
		seen[r.Index] = true
	})
	require.NoError(t, err)
	require.Len(t, results, len(jobs))
	require.Len(t, seen, len(jobs))
	for i, r := range results {
		require.NoError(t, r.Err)
		require.Equal(t, i, r.Index, "results come back in input order")
		require.Equal(t, jobs[i].ID, r.Submitted.ID)
		require.False(t, r.Submitted.Existing)
	}

	// Again, with five new jobs at the end: only those go in.
	more := append(append([]enqueue.Job(nil), jobs...), make([]enqueue.Job, 5)...)
	for i := len(jobs); i < len(more); i++ {
		more[i] = recaptchaJob(fmt.Sprintf("many-%02d", i))
	}
	results, err = c.SubmitMany(ctx, more, 0, nil)
	require.NoError(t, err)
	existing := 0
	for _, r := range results {
		require.NoError(t, r.Err)
		if r.Submitted.Existing {
			existing++
		}
	}
	require.Equal(t, len(jobs), existing)
	pending, err := asynq.NewInspectorFromRedisClient(rc).ListPendingTasks(enqueue.DefaultQueue, asynq.PageSize(100))
	require.NoError(t, err)
	require.Len(t, pending, len(more))
}

func TestSubmitManyRefusesTheWholeBatch(t *testing.T) {
	t.Parallel()
	c, mr, _ := miniClient(t)
	jobs := []enqueue.Job{recaptchaJob("ok-1"), recaptchaJob("ok-2"), {ID: "bad", Task: map[string]any{"type": "TurnstileToken"}}, recaptchaJob("ok-3")}
	results, err := c.SubmitMany(context.Background(), jobs, 4, func(enqueue.SubmitResult) { t.Error("nothing may be submitted") })
	require.Error(t, err)
	require.Nil(t, results)
	require.Contains(t, err.Error(), "job 2")
	require.Contains(t, err.Error(), "nothing submitted")
	var verr *enqueue.ValidationError
	require.True(t, errors.As(err, &verr))
	require.Equal(t, "task.websiteURL", verr.Field)
	require.Empty(t, mr.Keys(), "nothing reached Redis")
}

func TestSubmitManyStopsWhenCanceled(t *testing.T) {
	t.Parallel()
	c, mr, _ := miniClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	jobs := []enqueue.Job{recaptchaJob("c-1"), recaptchaJob("c-2"), recaptchaJob("c-3")}
	results, err := c.SubmitMany(ctx, jobs, 1, nil)
	require.Len(t, results, len(jobs))
	for i, r := range results {
		// A job the feeder handed out before it saw the cancellation fails on its own.
		require.True(t, r.Err != nil || (errors.Is(err, context.Canceled) && r.Submitted.ID == ""),
			"job %d: want an error or not attempted, got %+v (batch error %v)", i, r, err)
	}
	require.Empty(t, mr.Keys(), "nothing reached Redis")
}

// TestPayloadIsJSON guards the shape other tools (asynqmon's formatter, jq) read.
func TestPayloadIsJSON(t *testing.T) {
	t.Parallel()
	c, _, rc := miniClient(t)
	_, err := c.Submit(context.Background(), enqueue.Job{ID: "shape", Provider: "CapSolver", Settings: map[string]any{"k": "v"},
		MaxRetries: intPtr(2), Task: website("TurnstileToken")})
	require.NoError(t, err)
	info, err := asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(enqueue.DefaultQueue, "shape")
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(info.Payload, &m))
	require.ElementsMatch(t, []string{"v", "task", "provider", "settings", "maxRetries", "submittedAt"}, mapKeys(m))

	// A gateway job carries its key's name, its taskId and its callback; the task is untouched.
	_, err = c.Submit(context.Background(), enqueue.Job{ID: "gw-shape", KeyName: "alpha", GatewayTaskID: 77,
		CallbackURL: "https://hooks.example/cb", Task: website("TurnstileToken")})
	require.NoError(t, err)
	info, err = asynq.NewInspectorFromRedisClient(rc).GetTaskInfo(enqueue.DefaultQueue, "gw-shape")
	require.NoError(t, err)
	p, err := jobwire.DecodePayload(info.Payload)
	require.NoError(t, err)
	require.Equal(t, "alpha", p.KeyName)
	require.Equal(t, int64(77), p.GatewayTaskID)
	require.Equal(t, "https://hooks.example/cb", p.CallbackURL)
	require.Equal(t, website("TurnstileToken"), p.Task, "the key's name never enters the task sent to AnySolver")
}

func mapKeys(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestSharedClient: many goroutines submitting and reading at once through a Shared client's
// pipeline each get their own answer, a conflict included, and every job is in Redis when its
// call returns.
func TestSharedClient(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	c, err := enqueue.NewClient(enqueue.Config{Redis: rc, Shared: true})
	require.NoError(t, err)
	ctx := context.Background()
	_, err = c.SubmitJob(ctx, enqueue.Job{Task: map[string]any{"type": "ImageToTextTask"}})
	var verr *enqueue.ValidationError
	require.ErrorAs(t, err, &verr, "validated like SubmitJob")

	var wg sync.WaitGroup
	subs := make([]enqueue.Submitted, 40)
	errs := make([]error, len(subs))
	for i := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subs[i], errs[i] = c.SubmitJob(ctx, recaptchaJob(fmt.Sprintf("shared-%d", i%20)))
		}()
	}
	wg.Wait()
	existing := 0
	for i, s := range subs {
		require.NoError(t, errs[i])
		if s.Existing {
			existing++
		}
		out, err := c.StatusIn(ctx, enqueue.DefaultQueue, s.ID)
		require.NoError(t, err, "job %s is in Redis when SubmitJob returns", s.ID)
		require.Equal(t, enqueue.StatePending, out.State)
		typ, err := c.TaskTypeIn(ctx, enqueue.DefaultQueue, s.ID)
		require.NoError(t, err)
		require.Equal(t, "RecaptchaV2TaskProxyless", typ)
	}
	require.Equal(t, 20, existing, "each ID was created once")
	_, err = c.StatusIn(ctx, enqueue.DefaultQueue, "nobody")
	require.ErrorIs(t, err, enqueue.ErrJobNotFound)
	_, err = c.TaskTypeIn(ctx, enqueue.DefaultQueue, "nobody")
	require.ErrorIs(t, err, enqueue.ErrJobNotFound)
}
