//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/deadletter"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/queuereg"
)

// openPTY opens a pseudo-terminal: the slave is a real terminal for the command's Stdin, the
// master is the keyboard the test types on.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { master.Close() })
	var unlock int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock)))
	require.Zero(t, errno, "unlock the pty")
	var n uint32
	_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n)))
	require.Zero(t, errno, "the pty's number")
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { slave.Close() })
	require.True(t, isTerminal(slave))
	return master, slave
}

// putDeadLetters stores dead letters with these IDs in queue.
func putDeadLetters(t *testing.T, rc redis.UniversalClient, queue string, ids ...string) {
	t.Helper()
	ctx := context.Background()
	require.NoError(t, queuereg.Register(ctx, rc, queue))
	for _, id := range ids {
		raw, err := json.Marshal(deadletter.Letter{ID: id, Queue: queue, Payload: json.RawMessage(`{"v":1,"task":{"type":"x"}}`),
			Record: jobwire.Record{State: enqueue.StateDead}, DeadAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)})
		require.NoError(t, err)
		require.NoError(t, rc.HSet(ctx, keys.DeadLetters(queue), keys.DeadLetterField(queue, id), raw).Err())
	}
}

// deadLetterCount is how many dead letters the queues hold.
func deadLetterCount(t *testing.T, rc redis.UniversalClient, queues ...string) int {
	t.Helper()
	total := 0
	for _, q := range queues {
		n, err := rc.HLen(context.Background(), keys.DeadLetters(q)).Result()
		require.NoError(t, err)
		total += int(n)
	}
	return total
}

// TestCLIPurgeAllAsks: dlq purge --all deletes without asking only with --yes; without a
// terminal it refuses, naming --yes; on a terminal it asks and deletes on "y" only.
func TestCLIPurgeAllAsks(t *testing.T) {
	t.Parallel()
	url, rc := cliRedis(t)
	vars := map[string]string{"REDIS_URL": url, "SOLVEQUEUE_YES": "true"} // --yes never comes from the environment
	putDeadLetters(t, rc, "default", "a-1", "a-2")
	putDeadLetters(t, rc, "scrapers", "s-1")

	refused := cliRun(t, vars, "y\n", "dlq", "purge", "--all")
	require.Equal(t, 2, refused.code, refused.stdout)
	require.Contains(t, refused.stderr, "would delete 3 dead letters in queues default, scrapers for good, and there is no terminal to ask on: add --yes")
	require.Equal(t, 3, deadLetterCount(t, rc, "default", "scrapers"), "nothing deleted")

	// On a terminal: asked, and only "y" (or "yes") deletes.
	ask := func(answer string, args ...string) cliResult {
		master, slave := openPTY(t)
		_, err := master.WriteString(answer + "\n")
		require.NoError(t, err)
		var stdout, stderr bytes.Buffer
		env := &Env{Stdin: slave, Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return vars[k] }}
		ctx, cancel := context.WithTimeout(context.Background(), hangGuard)
		defer cancel()
		code := run(ctx, env, args)
		return cliResult{code: code, stdout: stdout.String(), stderr: stderr.String()}
	}
	for _, answer := range []string{"", "n", "no", "sure"} {
		res := ask(answer, "dlq", "purge", "--all")
		require.Equal(t, 1, res.code, "answer %q", answer)
		require.Contains(t, res.stderr, "delete 3 dead letters in queues default, scrapers for good? [y/N] ")
		require.Contains(t, res.stderr, "not confirmed: nothing purged")
		require.Equal(t, 3, deadLetterCount(t, rc, "default", "scrapers"), "answer %q deletes nothing", answer)
	}
	res := ask("y", "dlq", "purge", "--all", "--queue", "scrapers")
	require.Equal(t, 0, res.code, res.stderr)
	require.Contains(t, res.stderr, "delete 1 dead letter in queue scrapers for good? [y/N] ")
	require.Equal(t, "1 job purged\n", res.stdout)
	require.Equal(t, 2, deadLetterCount(t, rc, "default", "scrapers"))

	// Named by ID: no question, the IDs are the choice.
	one := cliRun(t, vars, "", "dlq", "purge", "a-1")
	require.Equal(t, 0, one.code, one.stderr)
	require.Equal(t, "1 job purged\n", one.stdout)

	yes := cliRun(t, vars, "", "dlq", "purge", "--all", "--yes")
	require.Equal(t, 0, yes.code, yes.stderr)
	require.Equal(t, "1 job purged\n", yes.stdout)
	require.Zero(t, deadLetterCount(t, rc, "default", "scrapers"))

	empty := cliRun(t, vars, "", "dlq", "purge", "--all")
	require.Equal(t, 0, empty.code, "nothing to delete: nothing to ask: %s", empty.stderr)
	require.Equal(t, "0 jobs purged\n", empty.stdout)
}
