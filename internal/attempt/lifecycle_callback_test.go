package attempt

import (
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"sync"

	"github.com/hibiken/asynq"
	"pgregory.net/rapid"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// The callbacks of the lifecycle model (lifecycle_model_test.go): a receiver that refuses for a
// while, and asynq's running of the callback tasks the worker queues.

// callbackSeen is one delivery the receiver took.
type callbackSeen struct {
	State     string
	ErrorCode string
	EndTime   int64
}

// callbackReceiver is a job's callbackUrl: it refuses (HTTP 503) while refusing is set. It keeps
// each job's deliveries by the outcome they say they tell (outcomeSeq).
type callbackReceiver struct {
	mu        sync.Mutex
	refusing  bool
	delivered map[string]map[int][]callbackSeen
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
	if c.delivered[body.JobID] == nil {
		c.delivered[body.JobID] = map[int][]callbackSeen{}
	}
	c.delivered[body.JobID][body.OutcomeSeq] = append(c.delivered[body.JobID][body.OutcomeSeq], body.seen())
}

// latest returns the deliveries of the newest outcome the job's receiver heard of, and its number.
func (c *callbackReceiver) latest(jobID string) (int, []callbackSeen) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seq := 0
	for s := range c.delivered[jobID] {
		seq = max(seq, s)
	}
	return seq, c.delivered[jobID][seq]
}

type callbackBodySeen struct {
	JobID      string `json:"id"`
	OutcomeSeq int    `json:"outcomeSeq"`
	Status     string `json:"status"`
	ErrorCode  string `json:"errorCode"`
	EndTime    int64  `json:"endTime"`
}

func (b callbackBodySeen) seen() callbackSeen {
	return callbackSeen{State: b.Status, ErrorCode: b.ErrorCode, EndTime: b.EndTime}
}

// outcomeSeen is what a callback of rec should tell.
func outcomeSeen(rec jobwire.Record) callbackSeen {
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

// cbID is the task ID of the callback delivery of the job's outcome seq, in callback.Queue.
func cbID(j *mjob, seq int) string { return "cb-" + j.id + "-" + strconv.Itoa(seq) }

// noteCallback notices the callback deliveries the attempt queued.
func (m *lifecycle) noteCallback(j *mjob) {
	for seq := 1; seq <= j.outcomes; seq++ {
		if j.cbs[seq] != nil || m.rc.Exists(m.ctx, keys.AsynqTask(callback.Queue, cbID(j, seq))).Val() == 0 {
			continue
		}
		if j.cbs == nil {
			j.cbs = map[int]*mcallback{}
		}
		j.cbs[seq] = &mcallback{state: aPending, next: m.clock.Now()}
	}
}

// deliverCallbacks runs every callback delivery that is due, as asynq would.
func (m *lifecycle) deliverCallbacks(t *rapid.T) {
	ran := false
	for _, j := range m.jobs {
		for _, seq := range slices.Sorted(maps.Keys(j.cbs)) {
			cb := j.cbs[seq]
			if cb.state != aPending || cb.next.After(m.clock.Now()) {
				continue
			}
			id := cbID(j, seq)
			info, err := asynq.NewInspectorFromRedisClient(m.rc).GetTaskInfo(callback.Queue, id)
			if err != nil {
				t.Fatalf("callback task %s: %v", id, err)
			}
			ran = true
			err = m.proc.w.handler.ProcessTask(m.ctx, asynq.NewTask(callback.TaskType, info.Payload))
			m.logf("callback %s: %s", id, asynqText(err))
			switch {
			case err == nil || errors.Is(err, asynq.RevokeTask):
				cb.delivered, cb.abandoned = err == nil, err != nil
				cb.state = ""
				m.rc.LRem(m.ctx, "asynq:{"+callback.Queue+"}:pending", 0, id)
				m.rc.Del(m.ctx, keys.AsynqTask(callback.Queue, id))
			default:
				delay := m.retryDelay(cb.tries, err)
				cb.tries++
				cb.next = m.clock.Now().Add(delay)
			}
		}
	}
	if !ran {
		t.Skip("no callback due")
	}
}
