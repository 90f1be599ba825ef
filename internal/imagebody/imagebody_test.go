package imagebody_test

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/imagebody"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
)

// TestIsBodyRefAndPoisonedPayloads: only a key under keys.BodyPrefix is an image body; a payload
// naming any other key is refused, and Drop and Keep refuse to touch one.
func TestIsBodyRefAndPoisonedPayloads(t *testing.T) {
	t.Parallel()
	for key, want := range map[string]bool{
		keys.BodyPrefix + "{default}:ab12": true,
		keys.BodyPrefix + "ab12":           true, // written by an earlier version
		keys.BodyPrefix:                    false,
		"asynq:{default}:t:job-1":          false,
		"solvequeue:dlq":                   false,
		"":                                 false,
	} {
		require.Equal(t, want, keys.IsBody(key), key)
	}
	// A hand-made payload cannot point the worker at any other key.
	for _, ref := range []string{"asynq:{default}:t:job-1", "solvequeue:dlq", "session:admin"} {
		_, err := jobwire.DecodePayload([]byte(`{"v":1,"task":{"type":"ImageToTextTask"},"bodyRef":"` + ref + `","submittedAt":"2026-01-01T00:00:00Z"}`))
		require.ErrorContains(t, err, "bodyRef", ref)
	}
	ctx := context.Background()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	require.NoError(t, mr.Set("session:admin", "x"))
	require.Error(t, imagebody.Drop(ctx, rc, "session:admin"))
	require.Error(t, imagebody.Keep(ctx, rc, "session:admin"))
	require.True(t, mr.Exists("session:admin"))
}
