package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

func TestNewServerLimits(t *testing.T) {
	t.Parallel()
	srv := gateway.NewServer(http.NotFoundHandler(), gateway.ServerConfig{Addr: "127.0.0.1:0"})
	require.Equal(t, gateway.ReadHeaderTimeoutDefault, srv.ReadHeaderTimeout)
	require.Equal(t, gateway.ReadTimeoutDefault, srv.ReadTimeout)
	require.Equal(t, gateway.WriteTimeoutDefault, srv.WriteTimeout)
	require.Equal(t, gateway.IdleTimeoutDefault, srv.IdleTimeout)
	require.Equal(t, gateway.MaxHeaderBytesDefault, srv.MaxHeaderBytes)
}

// slowServer serves the gateway with short timeouts, so that a slow client is cut quickly.
func slowServer(t *testing.T) string {
	t.Helper()
	b := setup(t, mustKeys(t))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	addr, stop, err := gateway.ListenAndServe(ctx, b.handler, gateway.ServerConfig{Addr: "127.0.0.1:0",
		ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 600 * time.Millisecond, WriteTimeout: 2 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stop(context.Background()) })
	return addr
}

// cutBefore waits for the server to end the connection (EOF, a reset, or an answer followed by
// EOF) and fails if the safety limit passes first: the server, not the limit, must end it.
func cutBefore(t *testing.T, conn net.Conn, limit time.Duration) {
	t.Helper()
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(limit)))
	_, err := io.Copy(io.Discard, conn)
	var ne net.Error
	require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept a slow client's connection open: %v", err)
}

func TestSlowlorisHeaders(t *testing.T) {
	t.Parallel()
	addr := slowServer(t)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	// Half a request line and a header, then nothing: the header timeout cuts it.
	_, err = fmt.Fprintf(conn, "POST /getBalance HTTP/1.1\r\nHost: %s\r\nX-Slow: ", addr)
	require.NoError(t, err)
	cutBefore(t, conn, 30*time.Second)
}

func TestSlowlorisBody(t *testing.T) {
	t.Parallel()
	addr := slowServer(t)
	conn, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer conn.Close()
	const bodyLen = 1000
	_, err = fmt.Fprintf(conn, "POST /createTask HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", addr, bodyLen)
	require.NoError(t, err)
	// One byte every 50 ms would take 50 s; the read timeout cuts it long before.
	var sent atomic.Int64
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for range bodyLen {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if _, err := conn.Write([]byte(" ")); err != nil {
				return
			}
			sent.Add(1)
		}
	}()
	r := bufio.NewReader(conn)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(30*time.Second)))
	resp, err := http.ReadResponse(r, nil)
	if err == nil {
		// The handler saw its body read fail and answered in JSON; the connection then ends.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
	}
	cutBefore(t, conn, 30*time.Second)
	require.Less(t, sent.Load(), int64(bodyLen), "the body was cut before the client finished it")
}
