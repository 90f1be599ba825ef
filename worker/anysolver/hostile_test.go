package anysolver_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/classify"
	"github.com/solvequeue/solvequeue/worker/anysolver"
)

// The hostile answers the fake has no fault for: a 1 GB body streamed without a length, a body
// that drips a byte at a time and never ends, headers that trickle in and never finish.

// hostileServer serves one hostile answer and counts the body bytes it got out.
type hostileServer struct {
	ts      *httptest.Server
	written atomic.Int64
}

func newHostileServer(t *testing.T, serve func(w http.ResponseWriter, r *http.Request, written *atomic.Int64)) *hostileServer {
	t.Helper()
	h := &hostileServer{}
	h.ts = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serve(w, r, &h.written)
	}))
	t.Cleanup(h.ts.Close)
	return h
}

func (h *hostileServer) client(t *testing.T, timeout time.Duration) *anysolver.Client {
	t.Helper()
	c, err := anysolver.New(anysolver.Config{BaseURL: h.ts.URL, APIKey: testKey, Timeout: timeout})
	require.NoError(t, err)
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// streamGigabyte writes a valid JSON answer of 1 GB with no Content-Length.
func streamGigabyte(w http.ResponseWriter, r *http.Request, written *atomic.Int64) {
	w.Header().Set("Content-Type", "application/json")
	chunk := bytes.Repeat([]byte("a"), 64<<10)
	if _, err := w.Write([]byte(`{"errorId":0,"taskId":1,"pad":"`)); err != nil {
		return
	}
	for written.Load() < 1<<30 && r.Context().Err() == nil {
		n, err := w.Write(chunk)
		written.Add(int64(n))
		if err != nil {
			return
		}
	}
	_, _ = w.Write([]byte(`"}`))
}

// dripForever sends headers, then a byte a tenth of a second, until the client leaves.
func dripForever(w http.ResponseWriter, r *http.Request, written *atomic.Int64) {
	w.Header().Set("Content-Type", "application/json")
	rc := http.NewResponseController(w)
	for r.Context().Err() == nil {
		if _, err := w.Write([]byte(" ")); err != nil {
			return
		}
		written.Add(1)
		_ = rc.Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// trickleHeaders sends a status line and then header bytes a tenth of a second apart, never
// the blank line that ends them.
func trickleHeaders(w http.ResponseWriter, r *http.Request, written *atomic.Int64) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nX-Slow: ")
	_ = buf.Flush()
	for {
		if _, err := conn.Write([]byte("a")); err != nil {
			return
		}
		written.Add(1)
		select {
		case <-r.Context().Done():
			return
		case <-time.After(100 * time.Millisecond):
		}
		// A hijacked connection's request context does not end when the client leaves: a
		// failed write does, and the client's Timeout bounds the wait in any case.
		if written.Load() > 600 {
			return
		}
	}
}

// TestGigabyteStreamedBody checks a 1 GB answer without a Content-Length costs the client at
// most MaxBodyBytes+1 bytes of reading and a few MB of memory, and is dropped, not drained.
// It is not parallel: it measures the process's allocations.
func TestGigabyteStreamedBody(t *testing.T) {
	h := newHostileServer(t, streamGigabyte)
	c := h.client(t, time.Minute) // the body limit, not the Timeout, must end these calls
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, call := range []classify.Call{classify.CallCreateTask, classify.CallGetTaskResult, classify.CallGetBalance} {
		h.written.Store(0)
		err := callOnce(ctxT(t), c, call)
		requireTransport(t, err, call, classify.FailureOversizedBody, http.StatusOK)
		// The server side stops once its socket buffers fill after the client hung up.
		require.Less(t, h.written.Load(), int64(64<<20), "%s: the client kept reading a 1 GB body", call)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("three 1 GB answers: %d KB allocated in this process (client and server)", allocated>>10)
	require.Less(t, allocated, uint64(48<<20), "memory grew with the body")
}

// TestNeverEndingAnswersTimeOut checks a body that drips forever and headers that never end
// are timeouts within the client's Timeout, not hangs, and not the caller's own cancellation.
func TestNeverEndingAnswersTimeOut(t *testing.T) {
	t.Parallel()
	for name, serve := range map[string]func(http.ResponseWriter, *http.Request, *atomic.Int64){
		"drip": dripForever, "trickle headers": trickleHeaders,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			h := newHostileServer(t, serve)
			c := h.client(t, 500*time.Millisecond)
			ctx := ctxT(t)
			began := time.Now()
			err := callOnce(ctx, c, classify.CallGetTaskResult)
			elapsed := time.Since(began)
			requireTransport(t, err, classify.CallGetTaskResult, classify.FailureTimeout, transportStatus(err))
			require.ErrorIs(t, err, context.DeadlineExceeded)
			require.NoError(t, ctx.Err())
			// DeadlineExceeded while the test's context is alive: the client's Timeout ended
			// the call (drip never ends, trickle only after a minute, and then without a deadline).
			require.GreaterOrEqual(t, elapsed, 400*time.Millisecond)
		})
	}
}

// TestNoGoroutineLeakHostileStreams runs the streaming answers above and checks every
// goroutine they started ends. It is not parallel, so the count is its own.
func TestNoGoroutineLeakHostileStreams(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		for _, serve := range []func(http.ResponseWriter, *http.Request, *atomic.Int64){streamGigabyte, dripForever, trickleHeaders} {
			h := newHostileServer(t, serve)
			c := h.client(t, 300*time.Millisecond)
			for range 3 {
				_ = callOnce(ctxT(t), c, classify.CallCreateTask)
			}
			c.CloseIdleConnections()
			h.ts.CloseClientConnections()
			h.ts.Close()
		}
	}()
	deadline := time.Now().Add(time.Minute) // a hang guard: the goroutines end at once, or leak
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
	}
}

// callOnce makes one call of the given method.
func callOnce(ctx context.Context, c *anysolver.Client, call classify.Call) error {
	switch call {
	case classify.CallCreateTask:
		_, err := c.CreateTask(ctx, anysolver.CreateTaskRequest{Task: tokenTask})
		return err
	case classify.CallGetTaskResult:
		id, err := anysolver.ParseTaskID([]byte(`7`))
		if err != nil {
			return err
		}
		_, err = c.GetTaskResult(ctx, id)
		return err
	default:
		_, err := c.GetBalance(ctx)
		return err
	}
}

// transportStatus is the HTTP status inside a TransportError (0 without one).
func transportStatus(err error) int {
	var te *anysolver.TransportError
	if errors.As(err, &te) {
		return te.HTTPStatus
	}
	return 0
}
