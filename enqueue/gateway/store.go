package gateway

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// idemRecord is what an Idempotency-Key maps to: the taskId it gave and the request it came with.
type idemRecord struct {
	TaskID int64  `json:"taskId"`
	Body   string `json:"body"` // SHA-256 of the request body, hex
}

// claimScript claims an Idempotency-Key for a new taskId unless it is taken: KEYS[1] the key,
// ARGV[1] the record, ARGV[2] its TTL in ms. It returns the record already there, or false
// when the claim was made. (SET NX GET would do, but only from Redis 7.0; asynq needs 6.2.)
var claimScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[1])
if prev then return prev end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false`)

// claimIdempotencyKey claims key (an Idempotency-Key's digest) for rec. When it is already
// claimed, it returns the record of the first claim and taken true.
func (h *Handler) claimIdempotencyKey(ctx context.Context, k Key, digest string, rec idemRecord) (prev idemRecord, taken bool, err error) {
	data, err := json.Marshal(rec)
	if err != nil {
		return idemRecord{}, false, err
	}
	res, err := claimScript.Run(ctx, h.rc, []string{keys.GatewayIdempotency(k.Queue, k.Name, digest)}, data, h.cfg.IdempotencyTTL.Milliseconds()).Result()
	switch {
	case err == redis.Nil:
		return idemRecord{}, false, nil
	case err != nil:
		return idemRecord{}, false, fmt.Errorf("claim the Idempotency-Key: %w", err)
	}
	raw, _ := res.(string)
	if err := json.Unmarshal([]byte(raw), &prev); err != nil {
		return idemRecord{}, false, fmt.Errorf("read the Idempotency-Key's record: %w", err)
	}
	return prev, true, nil
}
