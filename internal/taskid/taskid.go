// Package taskid hands out the gateway's taskIds and names their jobs: a counter shared in Redis
// makes taskIds unique across gateways and restarts, a keyed permutation of it makes them look
// random, and a keyed hash of a key's name and a taskId names the job behind it.
package taskid

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// idBlock is how many counter values a gateway takes from Redis at a time. Values taken and not
// used (a gateway that stops) are skipped for good, which costs nothing.
const idBlock = 64

// Bits is the size of the taskId space: 2^52 values, all below 2^53.
const Bits = 52

// JobIDPrefix starts the ID of every job the gateway submits.
const JobIDPrefix = "gw-"

// Allocator hands out taskIds and names their jobs. A counter shared in Redis (INCRBY, a
// block at a time) makes taskIds unique across gateways and restarts, and a keyed permutation of
// the counter (a Feistel network over 52 bits, its key shared in Redis) makes them look random,
// so that a key cannot tell from its own taskIds how many other tasks exist, nor guess another
// task's. A taskId's job is named by a keyed hash of the key's name and the taskId (JobID).
type Allocator struct {
	rc redis.UniversalClient

	perm   atomic.Pointer[permutation] // loaded on first use
	loadMu sync.Mutex                  // serializes the loading

	mu        sync.Mutex
	next, end uint64 // the block in hand: next < end
}

// New returns an Allocator on rc.
func New(rc redis.UniversalClient) *Allocator { return &Allocator{rc: rc} }

// ErrExhausted means the counter ran past the taskId space (2^52 tasks).
var ErrExhausted = errors.New("the gateway's taskId counter is exhausted")

// permutation returns the shared permutation, loading it from Redis on first use.
func (a *Allocator) permutation(ctx context.Context) (*permutation, error) {
	if p := a.perm.Load(); p != nil {
		return p, nil
	}
	a.loadMu.Lock()
	defer a.loadMu.Unlock()
	if p := a.perm.Load(); p != nil {
		return p, nil
	}
	p, err := loadPermutation(ctx, a.rc)
	if err != nil {
		return nil, err
	}
	a.perm.Store(p)
	return p, nil
}

// JobID names the job of a key's taskId: JobIDPrefix and a keyed hash (HMAC-SHA256, 128 bits
// kept) of the key's name and the taskId. The gateway stores no mapping from taskIds to jobs: a
// key asking for a taskId looks for this job in its own queue, and another key's taskId, or a
// taskId that never existed, names a job that is not there. Either way the same one lookup
// finds nothing.
func (a *Allocator) JobID(ctx context.Context, keyName string, taskID int64) (string, error) {
	p, err := a.permutation(ctx)
	if err != nil {
		return "", err
	}
	var sum [sha256.Size]byte
	p.mac(&sum, []byte("job\x00"+keyName+"\x00"+strconv.FormatInt(taskID, 10)))
	return JobIDPrefix + hex.EncodeToString(sum[:16]), nil
}

// Next returns a fresh taskId in [1, 2^52).
func (a *Allocator) Next(ctx context.Context) (int64, error) {
	perm, err := a.permutation(ctx)
	if err != nil {
		return 0, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for {
		if a.next >= a.end {
			top, err := a.rc.IncrBy(ctx, keys.GatewayTaskIDCounter, idBlock).Uint64()
			if err != nil {
				return 0, fmt.Errorf("allocate taskIds: %w", err)
			}
			if top >= 1<<Bits {
				return 0, ErrExhausted
			}
			a.next, a.end = top-idBlock+1, top+1
		}
		n := a.next
		a.next++
		if id := perm.encode(n); id != 0 {
			return int64(id), nil
		}
	}
}

// permutation is a 4-round Feistel network on 52-bit numbers: a bijection, so distinct
// counter values give distinct taskIds. Its rounds and jobID are HMAC-SHA256 under key.
type permutation struct {
	key  []byte
	macs sync.Pool // of hash.Hash: HMAC-SHA256 under key, reset before each use
}

func newPermutation(key []byte) *permutation {
	p := &permutation{key: key}
	p.macs.New = func() any { return hmac.New(sha256.New, key) }
	return p
}

// mac returns HMAC-SHA256(key, msg) into out.
func (p *permutation) mac(out *[sha256.Size]byte, msg []byte) {
	m := p.macs.Get().(hash.Hash)
	m.Reset()
	m.Write(msg)
	m.Sum(out[:0])
	p.macs.Put(m)
}

const (
	halfBits = Bits / 2
	halfMask = 1<<halfBits - 1
	rounds   = 4
)

func (p *permutation) round(i int, half uint64) uint64 {
	var msg [9]byte
	msg[0] = byte(i)
	binary.BigEndian.PutUint64(msg[1:], half)
	var sum [sha256.Size]byte
	p.mac(&sum, msg[:])
	return binary.BigEndian.Uint64(sum[:8]) & halfMask
}

func (p *permutation) encode(n uint64) uint64 {
	l, r := (n>>halfBits)&halfMask, n&halfMask
	for i := range rounds {
		l, r = r, l^p.round(i, r)
	}
	return l<<halfBits | r
}

func (p *permutation) decode(id uint64) uint64 {
	l, r := (id>>halfBits)&halfMask, id&halfMask
	for i := rounds - 1; i >= 0; i-- {
		l, r = r^p.round(i, l), l
	}
	return l<<halfBits | r
}

// loadPermutation reads the permutation's key from Redis, creating it on first use. Every
// gateway on the Redis uses the same key, so they share one sequence of taskIds.
func loadPermutation(ctx context.Context, rc redis.UniversalClient) (*permutation, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, fmt.Errorf("make the taskId key: %w", err)
	}
	if err := rc.SetNX(ctx, keys.GatewayTaskIDSecret, hex.EncodeToString(fresh), 0).Err(); err != nil {
		return nil, fmt.Errorf("store the taskId key: %w", err)
	}
	stored, err := rc.Get(ctx, keys.GatewayTaskIDSecret).Result()
	if err != nil {
		return nil, fmt.Errorf("read the taskId key: %w", err)
	}
	key, err := hex.DecodeString(stored)
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("the taskId key in Redis (%s) is damaged: delete it only together with %s", keys.GatewayTaskIDSecret, keys.GatewayTaskIDCounter)
	}
	return newPermutation(key), nil
}

// Job is a job a taskId may name: its ID were the taskId one of the key KeyName's.
type Job struct {
	KeyName string
	JobID   string
}

// Jobs returns, for a taskId, the job ID it names under each gateway key name that gateways
// on rc have submitted jobs for, sorted by name. A taskId is given once, so at most one of these
// jobs exists, in its key's queue; the others name nothing. It is for an operator who has a
// client's taskId and not its key (the console's search); it writes nothing, and on a Redis where
// no gateway ever gave a taskId it returns none.
func Jobs(ctx context.Context, rc redis.UniversalClient, taskID int64) ([]Job, error) {
	if taskID <= 0 || taskID >= 1<<Bits {
		return nil, nil
	}
	stored, err := rc.Get(ctx, keys.GatewayTaskIDSecret).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the taskId key: %w", err)
	}
	secret, err := hex.DecodeString(stored)
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("the taskId key in Redis (%s) is damaged", keys.GatewayTaskIDSecret)
	}
	names, err := rc.SMembers(ctx, keys.GatewayKeyNames).Result()
	if err != nil {
		return nil, fmt.Errorf("read the gateway's key names: %w", err)
	}
	slices.Sort(names)
	ids := &Allocator{}
	ids.perm.Store(newPermutation(secret))
	out := make([]Job, 0, len(names))
	for _, name := range names {
		id, err := ids.JobID(ctx, name, taskID)
		if err != nil {
			return nil, err
		}
		out = append(out, Job{KeyName: name, JobID: id})
	}
	return out, nil
}
