package worker

// WaitingAttempts is how many of w's attempts wait for their next poll, for the tests of package
// worker_test.
func WaitingAttempts(w *Worker) int { return w.handler.waits.waitingCount() }

// waitingCount is how many attempts wait for their next poll.
func (w *waits) waitingCount() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for a := w.head; a != nil; a = a.nextWait {
		n++
	}
	return n
}
