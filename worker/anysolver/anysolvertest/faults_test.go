package anysolvertest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

func stringsReader(s string) io.Reader { return strings.NewReader(s) }

func TestFaultAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		fault      anysolvertest.Fault
		status     int
		bodyPrefix string
		validJSON  bool
	}{
		{anysolvertest.FaultHTML502, 502, "<html>", false},
		{anysolvertest.FaultHTTP503, 503, "Service Unavailable", false},
		{anysolvertest.FaultHTTP429, 429, "Too Many Requests", false},
		{anysolvertest.FaultGarbage, 200, "\x00", false},
		{anysolvertest.FaultTruncated, 200, `{"errorId":0`, false},
		{anysolvertest.FaultWrongShape, 200, `[`, true},
		{anysolvertest.FaultHuge, 200, `{"errorId":0`, true},
	}
	for _, tt := range tests {
		t.Run(string(tt.fault), func(t *testing.T) {
			t.Parallel()
			_, base := start(t, anysolvertest.Options{Script: func(anysolvertest.Task) anysolvertest.Behavior {
				return anysolvertest.Behavior{CreateHTTP: tt.fault}
			}})
			resp, err := http.Post(base+"/createTask", "application/json", stringsReader(createBody(token)))
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.Equal(t, tt.status, resp.StatusCode)
			require.True(t, strings.HasPrefix(string(body), tt.bodyPrefix), "body %.40q", body)
			require.Equal(t, tt.validJSON, json.Valid(body))
			if tt.fault == anysolvertest.FaultHuge {
				require.Len(t, body, anysolvertest.HugeBodyBytes)
			}
			if tt.fault == anysolvertest.FaultHTTP429 {
				require.Equal(t, "5", resp.Header.Get("Retry-After"))
			}
		})
	}
	for _, f := range []string{"html502", "reset", "hang"} {
		got, ok := anysolvertest.ParseFault(f)
		require.True(t, ok)
		require.Equal(t, anysolvertest.Fault(f), got)
	}
	_, ok := anysolvertest.ParseFault("teapot")
	require.False(t, ok)
}

func TestCloseReleasesHang(t *testing.T) {
	t.Parallel()
	for _, f := range []anysolvertest.Fault{anysolvertest.FaultHang, anysolvertest.FaultEndless} {
		fake, base := start(t, anysolvertest.Options{})
		fake.SetOutage(f, time.Now().Add(time.Hour))
		done := make(chan error, 1)
		go func() {
			resp, err := http.Post(base+"/getBalance", "application/json", stringsReader(`{}`))
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			done <- err
		}()
		// Close once the request is held: the fake counts a call before it serves the fault.
		for fake.Calls("getBalance") == 0 && len(done) == 0 {
			time.Sleep(5 * time.Millisecond)
		}
		fake.Close()
		select {
		case <-done:
		case <-time.After(time.Minute): // a hang guard
			t.Fatalf("%s: Close did not release the request", f)
		}
	}
}

func TestLogNormal(t *testing.T) {
	t.Parallel()
	a := anysolvertest.LogNormal(2*time.Second, 0.5, 7)
	b := anysolvertest.LogNormal(2*time.Second, 0.5, 7)
	below := 0
	for range 2000 {
		d := a()
		require.Equal(t, d, b(), "same seed, same times")
		require.Positive(t, d)
		if d < 2*time.Second {
			below++
		}
	}
	require.InDelta(t, 1000, below, 150, "half the times fall below the median")
}
