package enqueuetest

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects what goroutines write (a slog handler, a child process's output) while a
// test reads it. The zero value is ready to use.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p.
func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Count returns how many times s was written so far.
func (b *LogBuffer) Count(s string) int { return strings.Count(b.String(), s) }
