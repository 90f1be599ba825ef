package metrics

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/stretchr/testify/require"
)

func TestDeadLetterLimitCollector(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rc.Close() })

	reg := prometheus.NewRegistry()
	reg.MustRegister(NewDeadLetterLimitCollector(rc, 2))
	const head = `
# HELP solvequeue_dead_letters_limit The bound on the durable dead-letter queue's entries (--dlq-limit); absent when unbounded.
# TYPE solvequeue_dead_letters_limit gauge
solvequeue_dead_letters_limit 2
# HELP solvequeue_dead_letters_refused_total Dead jobs refused by the full dead-letter queue (kept in asynq's archive only), counted by every worker in Redis.
# TYPE solvequeue_dead_letters_refused_total counter
`
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(head+"solvequeue_dead_letters_refused_total 0\n")))

	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		_ = deadletter.Put(ctx, rc, deadletter.Letter{ID: id, Queue: "default", Payload: []byte(`{}`), DeadAt: time.Now()}, 2)
	}
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(head+"solvequeue_dead_letters_refused_total 1\n")))

	require.Equal(t, 2, testutil.CollectAndCount(NewDeadLetterLimitCollector(rc, 0)), "0 means the default bound")
	require.Equal(t, 1, testutil.CollectAndCount(NewDeadLetterLimitCollector(rc, -1)), "no bound: no limit gauge")
	mr.Close()
	require.Equal(t, 1, testutil.CollectAndCount(NewDeadLetterLimitCollector(rc, 2)), "Redis gone: the limit only")
}
