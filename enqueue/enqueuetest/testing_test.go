package enqueuetest

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFailOnMissing(t *testing.T) {
	t.Parallel()

	for ci, want := range map[string]bool{"true": true, "TRUE": true, "1": true, "": false, "false": false, "0": false, "yes": false} {
		require.Equal(t, want, failOnMissing(ci), "CI=%q", ci)
	}
}

// recordingTB stands in for a test, recording how it ended.
type recordingTB struct {
	testing.TB
	ended   string // "skip" or "fatal"
	message string
}

func (r *recordingTB) Helper() {}

func (r *recordingTB) Skipf(format string, args ...any) {
	r.ended, r.message = "skip", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recordingTB) Fatalf(format string, args ...any) {
	r.ended, r.message = "fatal", fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestRedisWithoutServer(t *testing.T) {
	t.Parallel()

	tests := []struct {
		ci   string
		want string
	}{
		{"", "skip"},
		{"false", "skip"},
		{"true", "fatal"},
	}
	const bin = "/nonexistent/redis-server"
	helpers := map[string]func(t testing.TB, getenv func(string) string){
		"Redis":           func(t testing.TB, getenv func(string) string) { startForTest(t, getenv, RedisOptions{Binary: bin}) },
		"NeedRedisServer": func(t testing.TB, getenv func(string) string) { needServer(t, getenv, bin) },
	}
	for name, helper := range helpers {
		for _, tt := range tests {
			t.Run(name+"/CI="+tt.ci, func(t *testing.T) {
				t.Parallel()
				rec := &recordingTB{TB: t}
				done := make(chan struct{})
				go func() {
					defer close(done)
					helper(rec, func(string) string { return tt.ci })
				}()
				<-done
				require.Equal(t, tt.want, rec.ended)
				require.Contains(t, rec.message, "apt-get install redis-server")
			})
		}
	}
}
