package demo

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// TestDemoNext: the hints name the command as the binary was run (its name comes from the
// binary's commandName, tested beside it).
func TestDemoNext(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ arg0, want string }{
		{"/tmp/go-build4053408530/b001/exe/solvequeue", "go run ./cmd/solvequeue"},
		{"/root/.cache/tmp/go-build12/b001/exe/solvequeue", "go run ./cmd/solvequeue"},
		{"solvequeue", "solvequeue"},
		{"./solvequeue", "./solvequeue"},
		{"/usr/local/bin/solvequeue", "/usr/local/bin/solvequeue"},
		{"/srv/exe/solvequeue", "/srv/exe/solvequeue"},
		{"", "solvequeue"},
	} {
		var buf strings.Builder
		writeDemoNext(&buf, tt.want)
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		require.Equal(t, "next:", lines[0])
		require.Len(t, lines, 4)
		for _, line := range lines[1:] {
			require.True(t, strings.HasPrefix(line, "  "+tt.want+" "), "%q names %q", line, tt.want)
		}
		require.Regexp(t, `(?m)^  `+regexp.QuoteMeta(tt.want)+` demo --http 127\.0\.0\.1:8080 --hold 5m\s+the same run`, buf.String())
	}
}

// TestDemoProgressNoRepeat: an unchanged progress line is never printed twice in a row; while
// nothing changes, one heartbeat per demoHeartbeat says what the demo waits for.
func TestDemoProgressNoRepeat(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	ended := func(states ...enqueue.State) []enqueue.Outcome {
		out := make([]enqueue.Outcome, len(states))
		for i, s := range states {
			out[i].State = s
		}
		return out
	}
	steps := []struct {
		after    time.Duration // since the start
		outcomes []enqueue.Outcome
		want     string // "" for nothing printed
	}{
		{2 * time.Second, nil, "0/3 ended · solved 0 · failed 0 · dead 0"},
		{4 * time.Second, nil, ""},
		{6 * time.Second, nil, ""},
		{8 * time.Second, ended(enqueue.StateSolved), "1/3 ended · solved 1 · failed 0 · dead 0"},
		{10 * time.Second, ended(enqueue.StateSolved), ""},
		{8*time.Second + demoHeartbeat - time.Millisecond, ended(enqueue.StateSolved), ""},
		{8*time.Second + demoHeartbeat, ended(enqueue.StateSolved), "1/3 ended · solved 1 · failed 0 · dead 0 · still waiting for the rest"},
		{10*time.Second + demoHeartbeat, ended(enqueue.StateSolved), ""},
		{12*time.Second + demoHeartbeat, ended(enqueue.StateSolved, enqueue.StateDead, enqueue.StateFailed), "3/3 ended · solved 1 · failed 1 · dead 1"},
	}
	var p progressPrinter
	for i, st := range steps {
		line, ok := p.next(progressLine(3, st.outcomes), at.Add(st.after))
		if st.want == "" {
			require.False(t, ok, "step %d printed %q", i, line)
			continue
		}
		require.True(t, ok, "step %d", i)
		require.True(t, strings.HasPrefix(line, st.want), "step %d: %q", i, line)
	}
}

func TestDemoCharges(t *testing.T) {
	t.Parallel()
	var buf strings.Builder
	writeCharges(&buf, anysolvertest.Stats{CreateTask: 372, Created: 282, Failed: 12, Charged: 0.282})
	require.Equal(t, "the fake AnySolver saw 372 createTask calls; only a call that creates a task is charged:\n"+
		"  282 created a task, charged $0.282 in all (12 of those tasks failed while being solved, e.g. CAPTCHA_UNSOLVABLE, and their jobs paid for a new one)\n"+
		"  90 were refused with an error code or an error page and created nothing: not charged\n", buf.String())
	buf.Reset()
	writeCharges(&buf, anysolvertest.Stats{CreateTask: 1, Created: 1, Charged: 0.001})
	require.Equal(t, "the fake AnySolver saw 1 createTask call; only a call that creates a task is charged:\n"+
		"  1 created a task, charged $0.001 in all\n", buf.String())
}
