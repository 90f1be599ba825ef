package worker

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"

	"github.com/hibiken/asynq"
	"pgregory.net/rapid"

	"github.com/solvequeue/solvequeue/enqueue"
)

// The callbacks of the lifecycle model (lifecycle_model_test.go): a receiver that refuses for a
// while, and asynq's running of the callback tasks the worker queues.

// callbackSeen is one delivery the receiver took.
type callbackSeen struct {
	State     string
	ErrorCode string
	EndTime   int64
}

// callbackReceiver is a job's callbackUrl: it refuses (HTTP 503) while refusing is set.
type callbackReceiver struct {
	mu        sync.Mutex
	refusing  bool
	delivered map[string][]callbackSeen
}

func (c *callbackReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.refusing {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	var body callbackBodySeen
	_ = json.NewDecoder(r.Body).Decode(&body)
	c.delivered[body.JobID] = append(c.delivered[body.JobID], body.seen())
}

type callbackBodySeen struct {
	JobID     string `json:"id"`
	Status    string `json:"status"`
	ErrorCode string `json:"errorCode"`
	EndTime   int64  `json:"endTime"`
}

func (b callbackBodySeen) seen() callbackSeen {
	return callbackSeen{State: b.Status, ErrorCode: b.ErrorCode, EndTime: b.EndTime}
}

// outcomeSeen is what a callback of rec should tell.
func outcomeSeen(rec enqueue.Record) callbackSeen {
	if rec.State == enqueue.StateSolved {
		return callbackSeen{State: "ready", EndTime: rec.FinishedAt.Unix()}
	}
	return callbackSeen{State: "failed", ErrorCode: codeOf(rec)}
}

func (s callbackSeen) tells(o callbackSeen) bool {
	if o.State == "ready" {
		return s.State == "ready" && s.EndTime == o.EndTime
	}
	return s == o
}

func (m *lifecycle) refuseCallbacks(t *rapid.T) {
	on := rapid.Bool().Draw(t, "refuse")
	m.recv.mu.Lock()
	m.recv.refusing = on
	m.recv.mu.Unlock()
	m.logf("callbacks refused: %v", on)
}

func cbID(j *mjob) string { return "cb-" + j.id }

// noteCallback notices a callback task the attempt queued.
func (m *lifecycle) noteCallback(j *mjob) {
	if j.cbState == "" && m.rc.Exists(m.ctx, taskKey(modelQueue, cbID(j))).Val() == 1 {
		j.cbState, j.cbNext, j.cbTries, j.cbFor = aPending, m.clock.Now(), 0, j.outcomes
	}
}

// deliverCallbacks runs every callback task that is due, as asynq would.
func (m *lifecycle) deliverCallbacks(t *rapid.T) {
	ran := false
	for _, j := range m.jobs {
		if j.cbState != aPending || j.cbNext.After(m.clock.Now()) {
			continue
		}
		info, err := m.client.Inspector().GetTaskInfo(modelQueue, cbID(j))
		if err != nil {
			t.Fatalf("callback task of %s: %v", j.id, err)
		}
		ran = true
		err = m.proc.w.handler.ProcessTask(m.ctx, asynq.NewTask(CallbackTaskType, info.Payload))
		m.logf("callback of %s: %s", j.id, asynqText(err))
		switch {
		case err == nil || errors.Is(err, asynq.RevokeTask):
			if err == nil {
				j.delivered = j.cbFor
			} else {
				j.abandoned = j.cbFor
			}
			j.cbState = ""
			m.rc.LRem(m.ctx, "asynq:{"+modelQueue+"}:pending", 0, cbID(j))
			m.rc.Del(m.ctx, taskKey(modelQueue, cbID(j)))
		default:
			delay := m.retryDelay(j.cbTries, err)
			j.cbTries++
			j.cbNext = m.clock.Now().Add(delay)
		}
	}
	if !ran {
		t.Skip("no callback due")
	}
}
