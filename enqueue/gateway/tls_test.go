package gateway_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue/gateway"
)

// TestListenAndServeTLSRefused: half a pair, or files that do not load, stop ListenAndServe
// before it listens, naming the files. (cmd/solvequeue's TestGatewayTLS serves a real pair.)
func TestListenAndServeTLSRefused(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	h, err := gateway.NewHandler(gateway.Config{Client: b.client, Redis: b.rc})
	require.NoError(t, err)
	missing := filepath.Join(t.TempDir(), "absent.crt")
	tests := []struct {
		name      string
		cert, key string
		want      string
	}{
		{"certificate only", missing, "", "set both --tls-cert and --tls-key"},
		{"key only", "", missing, "set both --tls-cert and --tls-key"},
		{"missing files", missing, missing + ".key", "gateway: TLS certificate " + missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := gateway.ListenAndServe(t.Context(), h, gateway.ServerConfig{Addr: "127.0.0.1:0", TLSCertFile: tt.cert, TLSKeyFile: tt.key})
			require.ErrorContains(t, err, tt.want)
		})
	}
}
