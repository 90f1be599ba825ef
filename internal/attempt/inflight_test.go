package attempt

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInflightWaitEndsWhenTheLastAttemptEnds(t *testing.T) {
	t.Parallel()
	var f inflight
	require.NoError(t, f.wait(context.Background()), "nothing running: no wait")

	f.add()
	f.add()
	waited := make(chan error, 1)
	go func() { waited <- f.wait(context.Background()) }()
	f.done()
	require.Equal(t, 1, f.count())
	select {
	case err := <-waited:
		t.Fatalf("wait returned with an attempt still running: %v", err)
	default:
	}
	f.done()
	require.NoError(t, <-waited)
	require.Zero(t, f.count())
}

func TestInflightWaitIsBoundedByTheContext(t *testing.T) {
	t.Parallel()
	var f inflight
	f.add()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, f.wait(ctx), context.Canceled)
	require.Equal(t, 1, f.count())
	f.done()
	require.NoError(t, f.wait(ctx), "idle: the canceled context does not matter")
}
