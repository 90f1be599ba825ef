package redisconn_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/redisconn"
)

// TestOpenRedisErrorsHideThePassword: a REDIS_URL that does not parse, or does not answer, is
// named in the error with its password cut, on every scheme.
func TestOpenRedisErrorsHideThePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, url string
		secrets   []string // none may show
		shows     string   // what the error still says
	}{
		{"a '/' in the password (the review's case)", "redis://user:ab/cdS3CRET@127.0.0.1:1/0",
			[]string{"S3CRET", "ab/cd", `":ab"`}, "invalid port"},
		{"a bad escape in the password", "redis://:p%zzS3CRET@127.0.0.1:1", []string{"S3CRET", "%zz"}, "escape"},
		{"rediss, a port that is not a number", "rediss://u:S3CRET@127.0.0.1:notaport/0", []string{"S3CRET"}, "notaport"},
		{"a bad database number", "redis://u:S3CRET@127.0.0.1:1/notadb", []string{"S3CRET"}, "notadb"},
		{"sentinel, a '/' in the password", "redis-sentinel://:S3CRET@h:ab/cd@127.0.0.1:1?master=m",
			[]string{"S3CRET", "ab/cd"}, "bad port"},
		{"cluster, a '/' in the password", "redis-cluster://u:S3CRET@h:ab/cd@127.0.0.1:1",
			[]string{"S3CRET", "ab/cd"}, "bad port"},
		{"no cluster there", "redis-cluster://u:S3CRET@127.0.0.1:1", []string{"S3CRET"}, "no Redis at redis-cluster://u:[redacted]@127.0.0.1:1"},
		{"socket, a bad database", "redis-socket://:S3CRET@/tmp/solvequeue-none.sock?db=zz", []string{"S3CRET"}, "db"},
		{"an unknown scheme", "unix://:S3CRET@/x", []string{"S3CRET"}, "unix"},
		{"no Redis there", "redis://u:S3CRET@127.0.0.1:1/0", []string{"S3CRET"}, "no Redis at redis://u:[redacted]@127.0.0.1:1/0"},
		{"no sentinel there", "redis-sentinel://u:S3CRET@127.0.0.1:1?master=m", []string{"S3CRET"}, "no Redis at"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second) // a sentinel retries for long
			defer cancel()
			rc, err := redisconn.Open(ctx, tt.url, 0)
			require.Nil(t, rc)
			require.Error(t, err)
			for _, s := range tt.secrets {
				require.NotContains(t, err.Error(), s)
			}
			require.NotContains(t, strings.ToLower(err.Error()), "s3cret")
			require.Contains(t, err.Error(), tt.shows)
		})
	}
}
