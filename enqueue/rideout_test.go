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
		{fmt.Errorf("redrive x: %w", ErrJobNotFound), false},
		{errors.New("redrive x: its image body is gone from Redis"), false},
	} {
		require.Equal(t, tc.want, unreachable(tc.err), tc.err.Error())
	}
}
