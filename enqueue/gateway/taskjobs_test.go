package gateway_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// TestTaskJobs: an operator with only a taskId gets, for each key name that submitted jobs, the
// job ID the taskId names under it; the key's own is the job there is. On a Redis where no
// gateway gave a taskId, nothing.
func TestTaskJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setup(t, mustKeys(t))
	none, err := gateway.TaskJobs(ctx, b.rc, 12345)
	require.NoError(t, err)
	require.Empty(t, none, "no gateway ever gave a taskId here")

	alphaTask := taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("k"))))
	taskID(t, b.call(t, gateway.MethodCreateTask, create(betaKey, recaptchaTask("k"))))
	taskID(t, b.call(t, gateway.MethodCreateTask, create(alphaKey, recaptchaTask("k2"))))

	jobs, err := gateway.TaskJobs(ctx, b.rc, alphaTask)
	require.NoError(t, err)
	require.Len(t, jobs, 2, "alpha and beta submitted jobs; gamma and delta never did")
	require.Equal(t, []string{"alpha", "beta"}, []string{jobs[0].KeyName, jobs[1].KeyName})
	want, err := b.handler.JobID(ctx, "alpha", alphaTask)
	require.NoError(t, err)
	require.Equal(t, want, jobs[0].JobID)
	out, err := b.client.StatusIn(ctx, "alpha", jobs[0].JobID)
	require.NoError(t, err)
	require.Equal(t, jobs[0].JobID, out.ID)
	_, err = b.client.StatusIn(ctx, "beta", jobs[1].JobID)
	require.Error(t, err, "the taskId names no job of beta's")

	for _, bad := range []int64{0, -1, 1 << 53} {
		jobs, err := gateway.TaskJobs(ctx, b.rc, bad)
		require.NoError(t, err)
		require.Empty(t, jobs)
	}
}
