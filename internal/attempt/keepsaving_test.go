package attempt

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/alicebob/miniredis/v2/server"
	"github.com/redis/go-redis/v9"
	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/record"
	"github.com/stretchr/testify/require"
)

// TestKeepSavingRecordsOnceRedisAnswers: when the first record of a paid remote task fails,
// the handler keeps trying in the background and the id lands once Redis answers again.
func TestKeepSavingRecordsOnceRedisAnswers(t *testing.T) {
	t.Parallel()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	mr.HSet(keys.AsynqTask("default", "job-1"), "msg", "x")
	st := record.New(rc)
	h := &Handler{store: st, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	// Redis refuses every command, counting them, until the background saves met a refusal.
	var refused atomic.Int64
	mr.Server().SetPreHook(func(c *server.Peer, cmd string, args ...string) bool {
		refused.Add(1)
		c.WriteError("LOADING Redis is loading the dataset in memory")
		return true
	})
	rec := jobwire.Record{State: enqueue.StateActive, Remote: &jobwire.Remote{TaskID: json.RawMessage(`"abc"`), CreatedAt: time.Now()}, CreateTasks: 1}
	stop := h.keepSaving("default", "job-1", rec, time.Now().Add(time.Hour))
	require.Eventually(t, func() bool { return refused.Load() > 0 }, time.Minute, 5*time.Millisecond, "the first save never reached Redis")
	mr.SetError("")
	ctx := context.Background()
	require.Eventually(t, func() bool {
		got, err := st.Load(ctx, "default", "job-1")
		return err == nil && got.Remote != nil && string(got.Remote.TaskID) == `"abc"`
	}, time.Minute, 20*time.Millisecond, "the remote id lands once Redis answers")
	stop()

	// stop ends the tries even while Redis keeps failing.
	mr.SetError("LOADING again")
	stop = h.keepSaving("default", "job-2", rec, time.Now().Add(time.Hour))
	done := make(chan struct{})
	go func() { stop(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("stop did not end the background saves")
	}
}
