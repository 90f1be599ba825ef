package httpserve_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/httpserve"
)

func TestServeStopsWithItsContextAndWithStop(t *testing.T) {
	t.Parallel()
	for _, how := range []string{"context", "stop"} {
		t.Run(how, func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr, stop := httpserve.Serve(ctx, srv, ln, time.Minute, slog.New(slog.DiscardHandler), "test")
			resp, err := http.Get("http://" + addr + "/")
			require.NoError(t, err)
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, "ok", string(body))
			if how == "context" {
				cancel()
			}
			require.NoError(t, stop(context.Background()), "stop waits until the server has stopped")
			require.NoError(t, stop(context.Background()), "and may be called again")
			_, err = http.Get("http://" + addr + "/")
			require.Error(t, err, "nothing serves there any more")
		})
	}
}
