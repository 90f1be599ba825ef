package record

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

func newTestStore(t *testing.T) (*miniredis.Miniredis, *Store) {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1})
	t.Cleanup(func() { _ = rc.Close() })
	mr.HSet(keys.AsynqTask("default", "job-1"), "msg", "x")
	return mr, &Store{rc: rc}
}

// TestSaveNeverUndoesAnOutcome: a record that is not terminal, written late (Redis ran it after
// a hang), does not replace an outcome; a terminal record does replace a running one.
func TestSaveNeverUndoesAnOutcome(t *testing.T) {
	t.Parallel()
	_, st := newTestStore(t)
	ctx := context.Background()
	running := jobwire.Record{State: enqueue.StateActive, Remote: &jobwire.Remote{TaskID: json.RawMessage(`7`)}, CreateTasks: 1}
	require.NoError(t, st.Save(ctx, "default", "job-1", &running))
	got, err := st.Load(ctx, "default", "job-1")
	require.NoError(t, err)
	require.Equal(t, enqueue.StateActive, got.State)

	solved := jobwire.Record{State: enqueue.StateSolved, Solution: json.RawMessage(`{"token":"t"}`), CreateTasks: 1}
	require.NoError(t, st.Save(ctx, "default", "job-1", &solved))
	require.NoError(t, st.Save(ctx, "default", "job-1", &running), "a late write is not an error")
	got, err = st.Load(ctx, "default", "job-1")
	require.NoError(t, err)
	require.Equal(t, enqueue.StateSolved, got.State, "the outcome stays")
	require.JSONEq(t, `{"token":"t"}`, string(got.Solution))

	require.NoError(t, st.Save(ctx, "default", "gone", &running))
	_, err = st.Load(ctx, "default", "gone")
	require.NoError(t, err)
}
