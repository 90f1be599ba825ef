package jobwire

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRecordWithError(t *testing.T) {
	t.Parallel()
	var r Record
	for i := range ErrorsKept + 3 {
		before := r
		beforeErrs := append([]ErrorInfo(nil), r.Errors...)
		r = r.WithError(ErrorInfo{ErrorCode: fmt.Sprintf("E%d", i), Attempt: i + 1})
		require.Equal(t, beforeErrs, before.Errors, "the record it was called on keeps its history")
		require.Equal(t, fmt.Sprintf("E%d", i), r.Error.ErrorCode, "the current error is the newest")
		require.Equal(t, *r.Error, r.Errors[len(r.Errors)-1])
	}
	require.Len(t, r.Errors, ErrorsKept)
	require.Equal(t, 3, r.ErrorsDropped)
	require.Equal(t, "E3", r.Errors[0].ErrorCode, "the oldest are dropped first")
}

// TestOutcomeSeq: a payload without the redrive count (one never redriven) is the first outcome.
func TestOutcomeSeq(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		payload string
		want    int
	}{
		{`{"v":1,"task":{"type":"ImageToTextTask","body":"AA=="},"submittedAt":"2026-05-01T10:00:00Z"}`, 1},
		{`{"v":1,"task":{"type":"ImageToTextTask","body":"AA=="},"submittedAt":"2026-05-01T10:00:00Z","redrives":4}`, 5},
	} {
		p, err := DecodePayload([]byte(tt.payload))
		require.NoError(t, err)
		require.Equal(t, tt.want, p.OutcomeSeq())
	}
}
