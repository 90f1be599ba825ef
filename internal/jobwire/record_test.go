package enqueue_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
)

func TestRecordWithError(t *testing.T) {
	t.Parallel()
	var r enqueue.Record
	for i := range enqueue.ErrorsKept + 3 {
		before := r
		beforeErrs := append([]enqueue.ErrorInfo(nil), r.Errors...)
		r = r.WithError(enqueue.ErrorInfo{ErrorCode: fmt.Sprintf("E%d", i), Attempt: i + 1})
		require.Equal(t, beforeErrs, before.Errors, "the record it was called on keeps its history")
		require.Equal(t, fmt.Sprintf("E%d", i), r.Error.ErrorCode, "the current error is the newest")
		require.Equal(t, *r.Error, r.Errors[len(r.Errors)-1])
	}
	require.Len(t, r.Errors, enqueue.ErrorsKept)
	require.Equal(t, 3, r.ErrorsDropped)
	require.Equal(t, "E3", r.Errors[0].ErrorCode, "the oldest are dropped first")
}
