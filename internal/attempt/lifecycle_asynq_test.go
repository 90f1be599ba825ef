package attempt

import (
	"errors"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"pgregory.net/rapid"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// The lifecycle model's (lifecycle_model_test.go) side of asynq: the keys a redrive and the
// failed index read, the redrives themselves, and reading a job's task and record.

func (m *lifecycle) redriveDead(t *rapid.T) {
	var js []*mjob
	for _, j := range m.jobs {
		if j.tainted == "" && m.rc.HExists(m.ctx, keys.DeadLetters(modelQueue), keys.DeadLetterField(modelQueue, j.id)).Val() {
			js = append(js, j)
		}
	}
	if len(js) == 0 {
		t.Skip("no dead letter")
	}
	j := pick(t, js)
	m.clock.Advance(time.Second)
	d, err := m.admin.DeadLetter(m.ctx, modelQueue, j.id)
	if err != nil {
		t.Fatalf("read dead letter %s: %v", j.id, err)
	}
	if err := m.admin.Redrive(m.ctx, d); err != nil {
		t.Fatalf("redrive %s: %v", j.id, err)
	}
	m.logf("redrive dead %s", j.id)
	m.restarted(j)
}

func (m *lifecycle) redriveFailed(t *rapid.T) {
	var js []*mjob
	for _, j := range m.jobs {
		if j.tainted == "" && j.state == aCompleted && j.final == enqueue.StateFailed {
			js = append(js, j)
		}
	}
	if len(js) == 0 {
		t.Skip("no failed job")
	}
	j := pick(t, js)
	m.clock.Advance(time.Second)
	if _, err := m.admin.RedriveFailed(m.ctx, modelQueue, j.id); err != nil {
		t.Fatalf("redrive failed %s: %v", j.id, err)
	}
	m.logf("redrive failed %s", j.id)
	m.restarted(j)
}

// restarted is a redrive in the model: a fresh task, a fresh retry budget and a fresh lifetime.
// The remote tasks of the job's first life were given up with it.
func (m *lifecycle) restarted(j *mjob) {
	now := m.clock.Now()
	j.state, j.retried, j.nextAt, j.replay = aPending, 0, now, false
	j.asynqMax = jobwire.AsynqMaxRetryDefault // a redrive enqueues a new task, as enqueue does
	j.final, j.finalCode, j.redrivenAt, j.sinceStart, j.lifeStart, j.throttled = "", "", now, 0, now, false
	if j.lifetime > 0 {
		j.deadline = now.Add(j.lifetime)
	}
	m.fake.mu.Lock()
	for _, r := range m.fake.byJob[j.id] {
		r.lost = true
	}
	m.fake.mu.Unlock()
}

// asynqMove puts a task in asynq's completed set or archive, as asynq's own scripts do: what a
// redrive and the failed index read.
func (m *lifecycle) asynqMove(id, to string) {
	key := keys.AsynqTask(modelQueue, id)
	m.rc.LRem(m.ctx, "asynq:{"+modelQueue+"}:pending", 0, id)
	m.rc.HSet(m.ctx, key, "state", to)
	m.rc.ZAdd(m.ctx, "asynq:{"+modelQueue+"}:"+to, redis.Z{Score: float64(m.clock.Now().Add(time.Hour).Unix()), Member: id})
}

func (m *lifecycle) payload(j *mjob) []byte {
	raw, err := m.rc.HGet(m.ctx, keys.AsynqTask(modelQueue, j.id), "msg").Bytes()
	if err != nil {
		m.t.Fatalf("task of %s: %v", j.id, err)
	}
	info, err := asynq.NewInspectorFromRedisClient(m.rc).GetTaskInfo(modelQueue, j.id)
	if err != nil || len(raw) == 0 {
		m.t.Fatalf("task of %s: %v", j.id, err)
	}
	return info.Payload
}

// record reads the job's record as Redis holds it.
func (m *lifecycle) record(j *mjob) jobwire.Record {
	raw, err := m.rc.HGet(m.ctx, keys.AsynqTask(modelQueue, j.id), "result").Bytes()
	if errors.Is(err, redis.Nil) {
		return jobwire.Record{}
	}
	if err != nil {
		m.t.Fatalf("record of %s: %v", j.id, err)
	}
	rec, err := jobwire.DecodeRecord(raw)
	if err != nil {
		m.t.Fatalf("record of %s is unreadable: %v", j.id, err)
	}
	return rec
}

// asynqText is what asynq is told, for the log.
func asynqText(err error) string {
	if err == nil {
		return "done"
	}
	return err.Error()
}

func codeOf(rec jobwire.Record) string {
	if rec.Error == nil {
		return ""
	}
	return rec.Error.ErrorCode
}

func lastText(a answer, ok bool) string {
	if !ok {
		return "none"
	}
	return a.String()
}

// expected is the code and decision the classifier's table gives an answer.
func (m *lifecycle) expected(a answer) (string, classify.Decision) {
	code := a.code
	switch a.kind {
	case ansReady, ansTaskID, ansProcessing:
		return "", ""
	case ansHTTP502:
		code = classify.CodeHTTP5xx
	case ansReset:
		code = classify.CodeConnection
	case ansTruncated:
		code = classify.CodeBadResponse
	}
	return code, m.policy.Classify(classify.Error{ErrorID: a.errorID, ErrorCode: code}).Decision
}
