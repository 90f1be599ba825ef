package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The gateway's Redis keys for a queue's tasks, each under the queue's hash tag so that a
// queue's keys share a Redis Cluster slot with its asynq keys:
//
//	solvequeue:gateway:{QUEUE}:task:SCOPE:TASKID   the job behind a taskId, for its key only
//	solvequeue:gateway:{QUEUE}:idem:SCOPE:SHA256   a createTask's Idempotency-Key
//
// SCOPE is the key's name. A taskId is looked up under the asking key's own name and queue,
// so another key's taskId is simply absent: the same one read, the same TASK_NOT_FOUND, as a
// taskId that never existed.
func taskKey(queue, scope string, id int64) string {
	return "solvequeue:gateway:{" + queue + "}:task:" + scope + ":" + strconv.FormatInt(id, 10)
}

func idemKey(queue, scope, digest string) string {
	return "solvequeue:gateway:{" + queue + "}:idem:" + scope + ":" + digest
}

// taskRef is what a taskId maps to.
type taskRef struct {
	JobID     string    `json:"job"`
	TaskType  string    `json:"type,omitempty"`
	CreatedAt time.Time `json:"at"`
}

// idemRecord is what an Idempotency-Key maps to: the taskId it gave and the request it came with.
type idemRecord struct {
	TaskID int64  `json:"taskId"`
	Body   string `json:"body"` // SHA-256 of the request body, hex
}

// claimScript writes a new taskId's mapping, and with an Idempotency-Key claims the key for it,
// in one step: KEYS[1] the mapping, KEYS[2] the idempotency key or none; ARGV[1] the mapping,
// ARGV[2] its TTL in ms, ARGV[3] the idempotency record, ARGV[4] its TTL in ms. It returns
// {1} when both were written, {2, record} when the Idempotency-Key is already taken (nothing
// written), and {3} when the taskId is already mapped (nothing written: take another).
var claimScript = redis.NewScript(`
if KEYS[2] then
  local prev = redis.call('GET', KEYS[2])
  if prev then return {2, prev} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {3} end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4]) end
return {1}`)

// claim results.
const (
	claimed    = 1
	claimIdem  = 2
	claimTaken = 3
)

// store is the gateway's own Redis state.
type store struct {
	rc      redis.UniversalClient
	taskTTL time.Duration
	idemTTL time.Duration
}

// claim maps a fresh taskId to its job and, when idem is set, claims the Idempotency-Key.
func (s *store) claim(ctx context.Context, queue, scope string, id int64, ref taskRef, idem string, rec idemRecord) (int, idemRecord, error) {
	refData, err := json.Marshal(ref)
	if err != nil {
		return 0, idemRecord{}, err
	}
	keys := []string{taskKey(queue, scope, id)}
	args := []any{refData, s.taskTTL.Milliseconds()}
	if idem != "" {
		recData, err := json.Marshal(rec)
		if err != nil {
			return 0, idemRecord{}, err
		}
		keys = append(keys, idemKey(queue, scope, idem))
		args = append(args, recData, s.idemTTL.Milliseconds())
	}
	res, err := claimScript.Run(ctx, s.rc, keys, args...).Slice()
	if err != nil {
		return 0, idemRecord{}, fmt.Errorf("record taskId: %w", err)
	}
	kind, _ := res[0].(int64)
	switch kind {
	case claimed:
		return claimed, idemRecord{}, nil
	case claimIdem:
		var prev idemRecord
		raw, _ := res[1].(string)
		if err := json.Unmarshal([]byte(raw), &prev); err != nil {
			return 0, idemRecord{}, fmt.Errorf("read Idempotency-Key record: %w", err)
		}
		return claimIdem, prev, nil
	case claimTaken:
		return claimTaken, idemRecord{}, nil
	}
	return 0, idemRecord{}, fmt.Errorf("record taskId: unexpected answer %v", res)
}

// lookup returns the job behind a key's taskId; found is false for a taskId the key does not own.
func (s *store) lookup(ctx context.Context, queue, scope string, id int64) (ref taskRef, found bool, err error) {
	data, err := s.rc.Get(ctx, taskKey(queue, scope, id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return taskRef{}, false, nil
	}
	if err != nil {
		return taskRef{}, false, fmt.Errorf("read taskId: %w", err)
	}
	if err := json.Unmarshal(data, &ref); err != nil {
		return taskRef{}, false, fmt.Errorf("read taskId: %w", err)
	}
	return ref, true, nil
}
