package enqueue

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestIsTransientReadsRedisTroubleAsUnreachableDoes: waiting on a job keeps waiting through what
// riding out a failover waits through, and stops at a job that is not there.
func TestIsTransientReadsRedisTroubleAsUnreachableDoes(t *testing.T) {
	t.Parallel()
	require.True(t, isTransient(errors.New("dial tcp 127.0.0.1:1: connect: connection refused")))
	require.True(t, isTransient(errors.New("READONLY You can't write against a read only replica.")))
	require.False(t, isTransient(fmt.Errorf("status x: %w", ErrJobNotFound)))
	require.False(t, isTransient(errors.New("a record that does not decode")))
}
