package gateway

import (
	"context"
	"time"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// tokenRead notes that a client read a solved job's token (getTaskResult or res.php) and counts
// the token in solvequeue_gateway_tokens_expired_total when this first read came after the
// token expired: a client that polls too slowly, or a job that waited too long, pays for tokens
// the site refuses. Only the first read counts (a mark in Redis, kept as long as the job), so a
// client that reads a token again does not count it twice. A Redis error is logged and the
// answer goes out anyway: the count is for the operator, not part of the protocol.
func (h *Handler) tokenRead(ctx context.Context, method string, key Key, jobID string, out enqueue.Outcome) {
	if out.State != enqueue.StateSolved || out.ExpiresAt.IsZero() {
		return
	}
	first, err := h.rc.SetNX(ctx, keys.GatewayTokenRead(key.Queue, jobID), h.cfg.Now().UTC().Format(time.RFC3339), h.client.Retention()).Result()
	if err != nil {
		h.cfg.Logger.Warn("gateway: could not mark a token as read", "key", key.Name, "job", jobID, "err", err)
		return
	}
	if first && out.Expired(h.cfg.Now()) {
		h.cfg.Metrics.tokenExpired(method, key.Name)
	}
}

// keyNames names every key the handler accepts: the keys file's, or LocalKeyName without one.
func (h *Handler) keyNames() []string {
	if h.cfg.Keys == nil {
		return []string{LocalKeyName}
	}
	return h.cfg.Keys.Names()
}
