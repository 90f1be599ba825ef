package gateway_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// TestUnserved: the keys whose queue no running worker serves are named, in keys-file order, with
// a warning line each for /readyz; a queue a worker serves is not; without a keys file, the one
// local key and its default queue.
func TestUnserved(t *testing.T) {
	t.Parallel()
	b := setup(t, mustKeys(t))
	names := func(keys []gateway.Key) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k.Name+"/"+k.Queue)
		}
		return out
	}
	keys, err := b.handler.Unserved()
	require.NoError(t, err)
	require.Equal(t, []string{"alpha/alpha", "beta/beta", "gamma/gamma", "delta/delta"}, names(keys), "no worker at all")

	b.startMiniWorker(t) // serves alpha, beta and default
	require.Eventually(t, func() bool {
		keys, err := b.handler.Unserved()
		return err == nil && len(keys) == 2
	}, 10*time.Second, 20*time.Millisecond, "a worker that starts is seen")
	keys, err = b.handler.Unserved()
	require.NoError(t, err)
	require.Equal(t, []string{"gamma/gamma", "delta/delta"}, names(keys))
	require.Equal(t, []string{
		"key gamma: no worker serves its queue gamma; its jobs wait and end JOB_EXPIRED after the key's lifetime (5m0s)",
		"key delta: no worker serves its queue delta; its jobs wait and end JOB_EXPIRED after the key's lifetime (5m0s)",
	}, b.handler.UnservedWarnings())

	open := setup(t, nil)
	keys, err = open.handler.Unserved()
	require.NoError(t, err)
	require.Equal(t, []string{"local/default"}, names(keys))
}
