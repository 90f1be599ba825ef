// Package failedindex keeps each queue's index of failed jobs (the job as submitted can never
// succeed): a sorted set of "CODE ID" members by the time the job failed, written by the worker,
// so that the web console and the operator's API list failed jobs without reading every
// completed asynq task.
package failedindex

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// Max bounds the failed index of a queue: the newest entries are kept.
const Max = 10_000

// Age bounds how long an entry stays in the failed index: a failed job's default
// retention (jobwire.RetentionDefault). One whose task asynq deleted earlier (a shorter retention) is
// dropped as it is read; one kept longer is still found by its ID.
const Age = jobwire.RetentionDefault

// Member is a failed job's member in keys.Failed: its error code (reduced to letters, digits
// and "_.:-", at most 64 characters) and its ID, separated by a space (an ID holds none).
func Member(code, id string) string { return failedCode(code) + " " + id }

func failedCode(code string) string {
	var b strings.Builder
	for _, c := range code {
		if b.Len() >= 64 {
			break
		}
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("_.:-", c) {
			b.WriteRune(c)
		}
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

// Entry is one job of a queue's failed index.
type Entry struct {
	ID       string
	Code     string
	FailedAt time.Time
}

// List lists the queue's failed index, newest first.
func List(ctx context.Context, rc redis.Cmdable, queue string) ([]Entry, error) {
	zs, err := rc.ZRevRangeWithScores(ctx, keys.Failed(queue), 0, Max-1).Result()
	if err != nil {
		return nil, fmt.Errorf("read queue %s's failed jobs: %w", queue, err)
	}
	out := make([]Entry, 0, len(zs))
	for _, z := range zs {
		m, _ := z.Member.(string)
		code, id, ok := strings.Cut(m, " ")
		if !ok {
			continue
		}
		out = append(out, Entry{ID: id, Code: code, FailedAt: time.UnixMilli(int64(z.Score)).UTC()})
	}
	return out, nil
}

// Forget drops entries from the queue's failed index (their tasks are gone).
func Forget(ctx context.Context, rc redis.Cmdable, queue string, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	members := make([]any, len(entries))
	for i, e := range entries {
		members[i] = Member(e.Code, e.ID)
	}
	if err := rc.ZRem(ctx, keys.Failed(queue), members...).Err(); err != nil {
		return fmt.Errorf("update queue %s's failed jobs: %w", queue, err)
	}
	return nil
}
