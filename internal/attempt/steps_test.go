package attempt

import (
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestStepsQueueBeyondTheBound: with one slot, a step run while another holds it is queued and
// its run returns at once, leaving no goroutine waiting; the goroutine of the running step runs
// the queued ones after its own, oldest first, and then frees the slot for the next run.
func TestStepsQueueBeyondTheBound(t *testing.T) {
	t.Parallel()
	s := newSteps(1)
	var (
		mu    sync.Mutex
		order []string
	)
	note := func(what string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, what)
	}
	inFirst, release := make(chan struct{}), make(chan struct{})
	firstDone := make(chan struct{})
	go func() {
		defer close(firstDone)
		s.run(func() {
			close(inFirst)
			<-release
			note("first")
		})
	}()
	<-inFirst
	s.run(func() { note("second") }) // returns at once: queued
	s.run(func() { note("third") })
	require.Equal(t, 2, s.waitingCount(), "both wait in the queue, not on goroutines")
	mu.Lock()
	require.Empty(t, order, "no queued step ran while the slot was taken")
	mu.Unlock()

	close(release)
	select {
	case <-firstDone:
	case <-time.After(30 * time.Second):
		t.Fatal("the first step's goroutine did not finish the queue")
	}
	require.Equal(t, []string{"first", "second", "third"}, order, "the queued steps ran after the first, oldest first")
	require.Zero(t, s.waitingCount())

	ran := false
	s.run(func() { ran = true })
	require.True(t, ran, "the slot is free again: a step runs at once, on its caller's goroutine")
}

// TestStepsUnbounded: with no bound every step runs at once on its caller's goroutine.
func TestStepsUnbounded(t *testing.T) {
	t.Parallel()
	s := newSteps(0)
	n := 0
	s.run(func() {
		s.run(func() { n++ })
		n++
	})
	require.Equal(t, 2, n)
}

// waitingCount is how many steps wait for a slot.
func (s *steps) waitingCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) - s.head
}
