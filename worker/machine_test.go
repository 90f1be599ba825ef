package worker

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// waitingCount is how many attempts wait for their next poll.
func (w *waits) waitingCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for a := w.head; a != nil; a = a.nextWait {
		n++
	}
	return n
}

// TestWaitsEndOnlyTheWaitsWhoseContextEnded: of three attempts waiting an hour, the two whose
// contexts end are handed to ended, once each, and leave the list; the third stays armed for its
// timer to claim, and the watch stops once nothing waits.
func TestWaitsEndOnlyTheWaitsWhoseContextEnded(t *testing.T) {
	t.Parallel()
	endedCh := make(chan *attempt, 3)
	w := newWaits(time.Millisecond, func(*attempt) { t.Error("a timer an hour away fired") }, func(a *attempt) { endedCh <- a })
	attempts := make([]*attempt, 3)
	cancels := make([]context.CancelFunc, 3)
	for i := range attempts {
		ctx, cancel := context.WithCancel(context.Background())
		t.Cleanup(cancel)
		attempts[i], cancels[i] = &attempt{ctx: ctx}, cancel
		require.True(t, w.arm(attempts[i], time.Hour))
	}
	require.Equal(t, 3, w.waitingCount())

	cancels[0]()
	cancels[2]()
	got := map[*attempt]bool{}
	for len(got) < 2 {
		select {
		case a := <-endedCh:
			got[a] = true
		case <-time.After(30 * time.Second):
			t.Fatal("the waits whose contexts ended were not ended")
		}
	}
	require.True(t, got[attempts[0]] && got[attempts[2]], "the two waits whose contexts ended")
	require.Equal(t, 1, w.waitingCount())
	require.False(t, w.claim(attempts[0]), "an ended wait is not claimed again")
	require.True(t, w.claim(attempts[1]), "the wait still armed is claimed by its timer")
	require.False(t, w.claim(attempts[1]), "and only once")
	attempts[1].timer.Stop()
	require.Eventually(t, func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		return !w.watching
	}, 10*time.Second, time.Millisecond, "the watch stops once nothing waits")
	select {
	case a := <-endedCh:
		t.Fatalf("a wait ended twice: %p", a)
	default:
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.False(t, w.arm(&attempt{ctx: ctx}, time.Hour), "no wait is armed on an ended context")
}

// TestAttemptWaitingForItsPollEndsWithItsContext: an attempt waiting an hour for its next poll
// ends as soon as asynq ends its context (a deadline, a lease lost, an operator's cancel, a
// shutdown handing it back), without polling, and keeps the paid remote task's id for the next
// attempt to resume.
func TestAttemptWaitingForItsPollEndsWithItsContext(t *testing.T) {
	t.Parallel()
	const key = "sk-machine-test-0a1b2c3d"
	fake := anysolvertest.New(anysolvertest.Options{APIKeys: []string{key}, Balance: 100,
		Script: anysolvertest.DirectiveScript(nil)})
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: key})
	require.NoError(t, err)
	w, err := New(Config{Redis: rc, AnySolver: as, Queues: map[string]int{"default": 1},
		Poll:     PollConfig{Fixed: true, Interval: time.Hour},
		Breaker:  BreakerConfig{Disabled: true},
		Observer: NewMetrics(prometheus.NewRegistry()), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	require.NoError(t, err)
	const taskKey = "asynq:{}:t:" // outside a server the task has no id or queue
	require.NoError(t, rc.HSet(context.Background(), taskKey, "msg", "x").Err())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	payload := `{"v":1,"task":{"type":"RecaptchaV2TaskProxyless","websiteURL":"https://shop.example/login","websiteKey":"sq:solve=1h"}}`
	returned := make(chan error, 1)
	go func() { returned <- w.handler.ProcessTask(ctx, asynq.NewTask(enqueue.TaskType, []byte(payload))) }()
	require.Eventually(t, func() bool { return w.handler.waits.waitingCount() == 1 }, 10*time.Second, time.Millisecond,
		"the attempt created its remote task and waits for its first poll")

	cancel()
	select {
	case err := <-returned:
		require.ErrorIs(t, err, context.Canceled)
	case <-time.After(30 * time.Second):
		t.Fatal("the attempt still waits for its poll an hour away after its context ended")
	}
	raw, err := rc.HGet(context.Background(), taskKey, "result").Bytes()
	require.NoError(t, err)
	rec, err := enqueue.DecodeRecord(raw)
	require.NoError(t, err)
	require.NotNil(t, rec.Remote, "the paid remote task's id is kept for the next attempt")
	st := fake.Stats()
	require.Equal(t, 1, st.CreateTask)
	require.Zero(t, st.GetTaskResult, "no poll after the context ended")
	require.Zero(t, w.handler.waits.waitingCount())
}
