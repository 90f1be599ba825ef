package enqueue

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUnreachable(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{fmt.Errorf("read: %w", io.EOF), true},
		{errors.New("UNKNOWN: redis eval error: dial tcp 127.0.0.1:1: connect: connection refused"), true},
		{errors.New("READONLY You can't write against a read only replica."), true},
		{outageError{errors.New("enqueue: task ID conflicts")}, true},
		{errors.New("redis: connection pool timeout"), true}, // a hung Redis holds every connection
		{errors.New("read tcp 127.0.0.1:1: use of closed network connection"), true},
		{fmt.Errorf("redrive x: %w", ErrJobNotFound), false},
		{errors.New("redrive x: its image body is gone from Redis"), false},
	} {
		require.Equal(t, tc.want, unreachable(tc.err), tc.err.Error())
	}
}

// TestIsTransientReadsRedisTroubleAsUnreachableDoes: waiting on a job keeps waiting through what
// riding out a failover waits through, and stops at a job that is not there.
func TestIsTransientReadsRedisTroubleAsUnreachableDoes(t *testing.T) {
	t.Parallel()
	require.True(t, isTransient(errors.New("dial tcp 127.0.0.1:1: connect: connection refused")))
	require.True(t, isTransient(errors.New("READONLY You can't write against a read only replica.")))
	require.False(t, isTransient(fmt.Errorf("status x: %w", ErrJobNotFound)))
	require.False(t, isTransient(errors.New("a record that does not decode")))
}
