package enqueue_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// Queue names with a brace are refused everywhere a name comes in: they would change the
// Redis Cluster hash tag asynq and solvequeue put around a queue's name (asynq issue #480).
func TestQueueNamesWithBracesAreRefused(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"{a}", "a{", "a}", "x{y}z", "{}"} {
		require.False(t, queuereg.ValidName(q), q)
		err := enqueue.Job{Queue: q, Task: website("RecaptchaV2TaskProxyless")}.Validate()
		var ve *enqueue.ValidationError
		require.ErrorAs(t, err, &ve, q)
		require.Equal(t, "queue", ve.Field)
	}
	require.True(t, queuereg.ValidName("tenant-1.high:q_2"))
}
