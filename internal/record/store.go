// Package record reads and writes a job's record (jobwire.Record) in asynq's task hash, its
// dead-letter entry and its image body: the writes that must land whatever the handler's context
// says, and the one that waits for a replica (the id of a paid remote task).
//
// It does not decide what a record says (the attempt machine does).
package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/replica"
)

// Store keeps a job's record in the "result" field of its asynq task hash: the same field
// asynq's ResultWriter writes, so the record lives and dies with the task (kept through retries
// and the archive, deleted with the task when its retention ends) and shows in the web UI.
//
// It writes with its own Redis client instead of ResultWriter because ResultWriter refuses to
// write once the handler's context is canceled, and the one write that must never be lost is
// the remote taskId right after a paid createTask, shutdown or not.
//
// The task hash's key and field are asynq's (internal/keys, asynq.go, pinned by TestAsynqLayout).
type Store struct {
	rc redis.UniversalClient
	// base is the client under rc's autopipeliner, for a write that must share one connection
	// with the WAIT after it (saveAcked).
	base redis.UniversalClient
	// DeadLetterLimit bounds the dead-letter queue's entries (deadletter.Put); 0: none.
	DeadLetterLimit int
	replicas        replicaCount
	// nodeReplicas counts each Cluster primary's replicas, by address (saveAcked on a Cluster).
	nodeMu       sync.Mutex
	nodeReplicas map[string]*replicaCount
}

// New returns a Store writing through go-redis's autopipeliner over rc where rc has one
// (a Ring has not): the records that many running jobs read and write at the same moment then
// share round trips, one pipeline per round trip, instead of one command each. Every call still
// waits for its own answer, so a record is in Redis when Save returns. Measured by
// `solvequeue bench`: a quarter less Redis CPU per job at 100 jobs in flight.
func New(rc redis.UniversalClient) *Store {
	if ap, err := rc.AutoPipeline(); err == nil {
		return &Store{rc: ap, base: rc}
	}
	return &Store{rc: rc, base: rc}
}

// saveIfExists writes the record only while the task hash exists, so a late write never
// resurrects a task that asynq already deleted; and a record that is not terminal (ARGV[2] = "0")
// never replaces a terminal one, so a write that Redis ran late (after a hang) cannot undo an
// outcome. Our records are JSON with "state" written as "state":"<state>".
var saveIfExists = redis.NewScript(saveIfExistsSource)

const saveIfExistsSource = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[2] == '0' then
  local cur = redis.call('HGET', KEYS[1], '` + keys.AsynqResultField + `')
  if cur and (string.find(cur, '"state":"solved"', 1, true) or string.find(cur, '"state":"failed"', 1, true)
      or string.find(cur, '"state":"dead"', 1, true)) then
    return 0
  end
end
redis.call('HSET', KEYS[1], '` + keys.AsynqResultField + `', ARGV[1])
return 1`

func (s *Store) Load(ctx context.Context, queue, id string) (jobwire.Record, error) {
	raw, err := s.rc.HGet(ctx, keys.AsynqTask(queue, id), keys.AsynqResultField).Bytes()
	if errors.Is(err, redis.Nil) {
		return jobwire.Record{}, nil
	}
	if err != nil {
		return jobwire.Record{}, fmt.Errorf("read record of job %s: %w", id, err)
	}
	rec, err := jobwire.DecodeRecord(raw)
	if err != nil {
		// Whether a paid remote task is pending is unknown: starting over could pay twice.
		return jobwire.Record{}, &UnreadableError{Raw: raw, Err: err}
	}
	return rec, nil
}

// UnreadableError is a record that Load found but cannot decode, with its raw bytes.
type UnreadableError struct {
	Raw []byte
	Err error
}

func (e *UnreadableError) Error() string {
	return "the job's record cannot be read: " + e.Err.Error()
}

// Unwrap gives errors.Is and errors.As the decoding error.
func (e *UnreadableError) Unwrap() error { return e.Err }

// SaveTimeout bounds one save: long enough to ride out a Redis restart, short enough that a
// job's end is not held up for long by a Redis that hangs.
const SaveTimeout = 10 * time.Second

// Save writes the record with a context of its own: it must land even while the worker shuts
// down, within SaveTimeout.
func (s *Store) Save(ctx context.Context, queue, id string, rec *jobwire.Record) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SaveTimeout)
	defer cancel()
	return s.SaveUntil(ctx, queue, id, rec)
}

// replicaCountTTL is how long SaveAcked trusts what the primary said of its replicas.
const replicaCountTTL = 30 * time.Second

// SaveAcked is Save for the record of a paid remote task, before polling it: where the primary has
// replicas, the write is followed by WAIT on the same connection, so that a replica holds it
// before the worker goes on. A failover (Sentinel promoting a replica after the primary died)
// then keeps the remote id, and the next attempt resumes the task instead of paying for a new
// one: asynchronous replication alone may lose the last writes before the primary died. A WAIT
// that times out (the replica is slow or gone) is only waited for replica.AckTimeout. On a
// Cluster, whose pipelines are split by node, the write and its WAIT go to the primary that
// holds the task's slot, on one of its connections. Without replicas it is Save.
func (s *Store) SaveAcked(ctx context.Context, queue, id string, rec *jobwire.Record) error {
	c := s.ackingClient(ctx, keys.AsynqTask(queue, id))
	if c == nil {
		return s.Save(ctx, queue, id, rec)
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record of job %s: %w", id, err)
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SaveTimeout)
	defer cancel()
	terminal := "0"
	if rec.State.Terminal() {
		terminal = "1"
	}
	// EVAL, not EVALSHA: a promoted replica has no script cache.
	if _, err := c.Pipelined(wctx, func(p redis.Pipeliner) error {
		p.Eval(wctx, saveIfExistsSource, []string{keys.AsynqTask(queue, id)}, data, terminal)
		p.Do(wctx, "WAIT", 1, replica.AckTimeout.Milliseconds())
		return nil
	}); err == nil {
		return nil
	}
	return s.Save(ctx, queue, id, rec) // Redis trouble: the usual retries
}

// ackingClient returns the client of the primary that holds key when it has replicas (the
// client itself on one Redis or a Sentinel's, the slot's primary on a Cluster), nil when a WAIT
// would wait for nothing or the primary is unknown.
func (s *Store) ackingClient(ctx context.Context, key string) *redis.Client {
	switch c := s.base.(type) {
	case *redis.Client:
		if s.replicas.get(ctx, c) > 0 {
			return c
		}
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil
		}
		s.nodeMu.Lock()
		if s.nodeReplicas == nil {
			s.nodeReplicas = map[string]*replicaCount{}
		}
		r := s.nodeReplicas[node.Options().Addr]
		if r == nil {
			r = &replicaCount{}
			s.nodeReplicas[node.Options().Addr] = r
		}
		s.nodeMu.Unlock()
		if r.get(ctx, node) > 0 {
			return node
		}
	}
	return nil
}

// replicaCount caches how many replicas the primary has (INFO replication's connected_slaves).
type replicaCount struct {
	mu      sync.Mutex
	n       int
	checked time.Time
}

// get returns the count, asking the primary when the last answer is older than replicaCountTTL;
// a failed ask counts none.
func (r *replicaCount) get(ctx context.Context, c *redis.Client) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.checked) < replicaCountTTL {
		return r.n
	}
	r.checked, r.n = time.Now(), replica.Connected(ctx, c)
	return r.n
}

// SaveUntil writes the record, retrying with backoff until it lands or ctx ends.
func (s *Store) SaveUntil(ctx context.Context, queue, id string, rec *jobwire.Record) error {
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode record of job %s: %w", id, err)
	}
	terminal := "0"
	if rec.State.Terminal() {
		terminal = "1"
	}
	delay := 50 * time.Millisecond
	for {
		err = saveIfExists.Run(ctx, s.rc, []string{keys.AsynqTask(queue, id)}, data, terminal).Err()
		if err == nil || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Second)
	}
	if err != nil {
		return fmt.Errorf("save record of job %s: %w", id, err)
	}
	return nil
}

// AddDeadLetter writes the durable dead-letter entry of a job; unreadable is a record that could
// not be decoded, kept as found for the operator (nil otherwise).
func (s *Store) AddDeadLetter(ctx context.Context, queue, id string, payload []byte, rec jobwire.Record, unreadable []byte, now time.Time) error {
	d := deadletter.Letter{ID: id, Queue: queue, Payload: json.RawMessage(payload), Record: rec, DeadAt: now.UTC(),
		UnreadableRecord: string(unreadable)}
	if !json.Valid(payload) {
		quoted, _ := json.Marshal(string(payload))
		d.Payload = quoted
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	return deadletter.Put(ctx, s.rc, d, s.DeadLetterLimit)
}

// LoadBody fetches an image body that travels under its own key. Only keys under the producer's
// blob prefix are read: a hand-made payload must not make the worker send any Redis key it
// names to AnySolver.
func (s *Store) LoadBody(ctx context.Context, key string) (string, error) {
	if !keys.IsBody(key) {
		return "", fmt.Errorf("image body reference %q is not a solvequeue blob key (%s...)", key, keys.BodyPrefix)
	}
	body, err := s.rc.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("image body %s is gone from Redis (expired?)", key)
	}
	return body, err
}

// SettleBody deletes the image body of a job that ended solved or failed (nothing will read it
// again) and takes the expiry off a dead job's, which a redrive needs (imagebody.Drop and
// KeepBody; a purge deletes it).
func (s *Store) SettleBody(ctx context.Context, key string, state enqueue.State) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), SaveTimeout)
	defer cancel()
	if state == enqueue.StateDead {
		return imagebody.Keep(ctx, s.rc, key)
	}
	return imagebody.Drop(ctx, s.rc, key)
}
