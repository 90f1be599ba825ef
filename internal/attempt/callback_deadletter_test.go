package attempt

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/admin"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/policyfile"
)

// TestDeadLetterOnlyWithItsCallback replays, event by event, what TestLifecycleModel found with
// rapid seed 11703104018603211197: a job with a callbackUrl ends dead; its worker process dies
// while writing that outcome; an operator redrives the dead letter before asynq gives the job
// back; the redriven job is solved. The dead outcome's callback was never queued: the process died
// after the dead letter and before the callback, and the redrive deleted the task whose replay
// would have queued it.
//
// Each case kills the worker before a different Redis command of the attempt that ends the job,
// every one of them in turn. After the death, a dead letter (what a redrive or a purge needs) must
// have its outcome's callback queued already. Then the job goes on as asynq and the operator would
// take it: replayed in a new process when there is no dead letter yet, redriven once there is, and
// solved; both outcomes must then have their callback deliveries queued.
func TestDeadLetterOnlyWithItsCallback(t *testing.T) {
	t.Parallel()
	// The commands of the attempt that ends the job, counted on a run without a death.
	r := newCallbackRig(t)
	r.script(deadAnswer)
	died, _ := r.attempt(t, nil)
	require.False(t, died)
	require.True(t, r.deadLetter(), "the job ends dead, in the dead-letter queue")
	r.proc.hook.mu.Lock()
	commands := r.proc.hook.n
	r.proc.hook.mu.Unlock()
	require.Greater(t, commands, 3, "the ending attempt reads the record, writes it, the dead letter and the callback")

	for k := 1; k <= commands; k++ {
		t.Run(fmt.Sprintf("dies before command %d of %d", k, commands), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			r := newCallbackRig(t)
			r.script(deadAnswer)
			died, _ := r.attempt(t, &crashPoint{where: "redis-before", k: k})
			require.True(t, died)
			if r.deadLetter() {
				require.True(t, r.callbackQueued(1), "a dead letter whose outcome's callback is not queued: a redrive or a purge loses the callback")
			} else {
				// asynq gives the job back once its lease expired: the new process finishes the
				// attempt, or replays the outcome recorded.
				r.newProcess(t)
				r.script(deadAnswer)
				died, err := r.attempt(t, nil)
				require.False(t, died)
				require.ErrorIs(t, err, asynq.SkipRetry, "the job ends dead")
				require.True(t, r.deadLetter())
				require.True(t, r.callbackQueued(1))
			}
			d, err := r.admin.DeadLetter(ctx, modelQueue, r.id)
			require.NoError(t, err)
			require.NoError(t, r.admin.Redrive(ctx, d))
			r.newProcess(t)
			r.script(answer{kind: ansReady})
			died, err = r.attempt(t, nil)
			require.False(t, died)
			require.NoError(t, err)
			require.Equal(t, enqueue.StateSolved, r.record(t).State)
			require.True(t, r.callbackQueued(1), "the dead outcome's callback")
			require.True(t, r.callbackQueued(2), "the redriven run's callback")
		})
	}
}

// deadAnswer is an answer that ends a job dead at once.
var deadAnswer = answer{kind: ansCode, code: "NO_PROVIDERS_AVAILABLE", errorID: 1}

// callbackRig is the lifecycle model's rig (a virtual clock, the scripted fake AnySolver, worker
// processes that die at a chosen Redis command) around one job with a callbackUrl.
type callbackRig struct {
	id    string
	mr    *miniredis.Miniredis
	rc    *redis.Client
	clock *vclock
	file  *policyfile.Policy
	fake  *fakeAnySolver
	srv   *httptest.Server
	admin *admin.Client
	procs int
	proc  *process
}

func newCallbackRig(t *testing.T) *callbackRig {
	t.Helper()
	file, err := policyfile.Parse("rig.yaml", []byte("retry:\n  maxRetries: 1\n"))
	require.NoError(t, err)
	r := &callbackRig{id: "j1", mr: miniredis.RunT(t), file: file,
		clock: &vclock{t: time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)}}
	r.rc = redis.NewClient(&redis.Options{Addr: r.mr.Addr()})
	r.fake = newFakeAnySolver(r.clock, file.Classification(), modelPollStep, modelRemoteTTL)
	r.srv = httptest.NewServer(r.fake)
	t.Cleanup(func() {
		r.fake.mu.Lock()
		for p := range r.procs {
			r.fake.die(p + 1)
		}
		r.fake.mu.Unlock()
		r.srv.CloseClientConnections()
		r.srv.Close()
		_ = r.rc.Close()
	})
	client, err := enqueue.NewClient(enqueue.Config{Redis: r.rc, Now: r.clock.Now})
	require.NoError(t, err)
	r.admin, err = admin.NewClient(admin.Config{Redis: r.rc, Now: r.clock.Now})
	require.NoError(t, err)
	_, err = client.Submit(context.Background(), enqueue.Job{ID: r.id, Queue: modelQueue,
		CallbackURL: "http://127.0.0.1:1/cb/" + r.id, // never delivered here: only queued
		Task:        map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": r.id}})
	require.NoError(t, err)
	r.newProcess(t)
	return r
}

// newProcess starts the worker process the next attempts run in.
func (r *callbackRig) newProcess(t *testing.T) {
	t.Helper()
	r.procs++
	p, err := newProcess(r.procs, r.mr, r.fake, r.srv.URL, r.file, false, r.clock)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.rc.Close() })
	r.proc = p
}

// script sets AnySolver's answer to the job's next createTask.
func (r *callbackRig) script(a answer) { r.fake.script(r.id, []answer{a}, nil) }

// attempt runs the job's task, as it stands in Redis, in the current process, dying at crash
// (nil: not at all); it returns whether the process died and what asynq is told.
func (r *callbackRig) attempt(t *testing.T, crash *crashPoint) (died bool, err error) {
	t.Helper()
	info, err := asynq.NewInspectorFromRedisClient(r.rc).GetTaskInfo(modelQueue, r.id)
	require.NoError(t, err)
	p := r.proc
	p.hook.mu.Lock()
	p.hook.n = 0
	p.hook.mu.Unlock()
	r.fake.mu.Lock()
	delete(r.fake.crash, p.n)
	if crash != nil {
		r.fake.crash[p.n] = *crash
	}
	crashed := r.fake.crashed[p.n]
	r.fake.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		meta := taskMeta{id: r.id, queue: modelQueue, retried: info.Retried, maxRetry: jobwire.AsynqMaxRetryDefault}
		done <- p.w.handler.process(context.Background(), meta, asynq.NewTask(jobwire.TaskType, info.Payload))
	}()
	select {
	case err := <-done:
		select {
		case <-crashed:
			return true, err
		default:
			return false, err
		}
	case <-crashed:
		return true, errors.New("the process died")
	}
}

func (r *callbackRig) deadLetter() bool {
	return r.rc.HExists(context.Background(), keys.DeadLetters(modelQueue), keys.DeadLetterField(modelQueue, r.id)).Val()
}

// callbackQueued says whether the delivery of the job's outcome seq is in callback.Queue.
func (r *callbackRig) callbackQueued(seq int) bool {
	return r.rc.Exists(context.Background(), keys.AsynqTask(callback.Queue, fmt.Sprintf("cb-%s-%d", r.id, seq))).Val() == 1
}

func (r *callbackRig) record(t *testing.T) jobwire.Record {
	t.Helper()
	raw, err := r.rc.HGet(context.Background(), keys.AsynqTask(modelQueue, r.id), "result").Bytes()
	require.NoError(t, err)
	rec, err := jobwire.DecodeRecord(raw)
	require.NoError(t, err)
	return rec
}
