package guesses_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/guesses"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestLimiter: the first failures are free, then each makes the address wait twice as long up to
// the bound; another address is never slowed, a success forgets, old failures are forgotten, and
// memory stays bounded with forgotten addresses dropped first.
func TestLimiter(t *testing.T) {
	t.Parallel()
	c := &clock{t: time.Unix(1_800_000_000, 0)}
	l := guesses.New(guesses.Params{Now: c.now})
	var waits []time.Duration
	for range guesses.FreeFailuresDefault + 8 {
		waits = append(waits, l.Failed("192.0.2.1"))
	}
	require.Equal(t, []time.Duration{0, 0, 0, 0, 0, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second,
		16 * time.Second, 32 * time.Second, time.Minute, time.Minute}, waits)
	require.Equal(t, time.Minute, l.Wait("192.0.2.1"))
	require.Zero(t, l.Wait("192.0.2.2"), "another address is not slowed")
	c.add(30 * time.Second)
	require.Equal(t, 30*time.Second, l.Wait("192.0.2.1"), "the wait runs down with the clock")
	c.add(forgetPlus)
	require.Zero(t, l.Failed("192.0.2.1"), "failures long past are forgotten")
	l.Succeeded("192.0.2.1")
	require.Zero(t, l.Tracked(), "a success forgets the address")

	bounded := guesses.New(guesses.Params{Now: c.now, Tracked: 100})
	for i := range 150 {
		bounded.Failed(fmt.Sprintf("10.0.%d.%d", i>>8, i&255))
	}
	require.LessOrEqual(t, bounded.Tracked(), 100)
	c.add(forgetPlus + time.Minute)
	bounded.Failed("198.51.100.1")
	require.Equal(t, 1, bounded.Tracked(), "forgotten addresses go first")
}

// forgetPlus is past guesses.ForgetDefault.
const forgetPlus = guesses.ForgetDefault + time.Minute
