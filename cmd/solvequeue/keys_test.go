package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/enqueuetest"
	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/internal/redisconn"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

const (
	keysTestShared      = "cb-shared-secret-7d41e0b9"
	keysTestAlphaSecret = "cb-alpha-file-secret-3c9f28a6"
)

// keysTestFile is a keys file whose key alpha has a callbackSecret and whose key beta has none.
func keysTestFile(t *testing.T) string {
	t.Helper()
	return cliWriteFile(t, "keys.yaml", "keys:\n"+
		"  - name: alpha\n    key: gk-alpha-5f0c2b9e7d1a4c8e\n    queue: default\n    callbackSecret: "+keysTestAlphaSecret+"\n"+
		"  - name: beta\n    key: gk-beta-93d1e0aa4b7c2f65\n    queue: default\n")
}

// TestCLIKeysCallbackSecret: 'keys callback-secret NAME' prints the key's callbackSecret from
// --keys, or else the secret derived from --callback-secret (flag or variable) and the name; it
// refuses a name the keys file lacks and a derivation without the shared secret.
func TestCLIKeysCallbackSecret(t *testing.T) {
	t.Parallel()
	keys := keysTestFile(t)
	shared := map[string]string{"SOLVEQUEUE_CALLBACK_SECRET": keysTestShared}
	tests := []struct {
		name     string
		vars     map[string]string
		args     []string
		code     int
		want     string // stdout on success, a part of stderr on failure
		notInErr string
	}{
		{name: "derived, from the variable", vars: shared, args: []string{"gamma"},
			want: callback.KeySecret(keysTestShared, "gamma") + "\n"},
		{name: "derived, from the flag", args: []string{"gamma", "--callback-secret", keysTestShared},
			want: callback.KeySecret(keysTestShared, "gamma") + "\n"},
		{name: "the keys file's own", vars: shared, args: []string{"alpha", "--keys", keys}, want: keysTestAlphaSecret + "\n"},
		{name: "the keys file's own needs no shared secret", args: []string{"alpha", "--keys", keys}, want: keysTestAlphaSecret + "\n"},
		{name: "a key of the file without one", vars: shared, args: []string{"beta", "--keys", keys},
			want: callback.KeySecret(keysTestShared, "beta") + "\n"},
		{name: "a name the file lacks", vars: shared, args: []string{"gamma", "--keys", keys}, code: 2,
			want: `no key named "gamma"`, notInErr: keysTestAlphaSecret},
		{name: "no shared secret", args: []string{"gamma"}, code: 2, want: "SOLVEQUEUE_CALLBACK_SECRET"},
		{name: "no name", vars: shared, code: 1, want: "accepts 1 arg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := cliRun(t, tt.vars, "", append([]string{"keys", "callback-secret"}, tt.args...)...)
			require.Equal(t, tt.code, res.code, "stdout: %s\nstderr: %s", res.stdout, res.stderr)
			if tt.code == 0 {
				require.Equal(t, tt.want, res.stdout)
				return
			}
			require.Contains(t, res.stderr, tt.want)
			require.Empty(t, res.stdout)
			if tt.notInErr != "" {
				require.NotContains(t, res.stderr, tt.notInErr)
			}
		})
	}
	// Derived secrets are the key's own: another name, or another shared secret, another secret.
	require.NotEqual(t, callback.KeySecret(keysTestShared, "gamma"), callback.KeySecret(keysTestShared, "beta"))
	require.NotEqual(t, callback.KeySecret(keysTestShared, "gamma"), callback.KeySecret(keysTestShared+"x", "gamma"))
}

// TestWorkerSignsCallbacksWithTheKeysFile: 'solvequeue worker --keys FILE', without --gateway,
// signs the callbacks of key alpha's jobs with alpha's callbackSecret, those of key beta (none in
// the file) with the secret 'keys callback-secret beta' prints, and a producer's job's with
// --callback-secret; each delivery checks with its own secret alone, and no secret reaches the
// worker's log or Redis.
func TestWorkerSignsCallbacksWithTheKeysFile(t *testing.T) {
	t.Parallel()
	s := newStack(t, enqueuetest.RedisOptions{}, anysolvertest.Options{})
	keys := keysTestFile(t)
	type delivery struct {
		header http.Header
		body   []byte
	}
	var (
		mu  sync.Mutex
		got = map[string]delivery{} // by job id
	)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var m struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(body, &m)
		mu.Lock()
		got[m.ID] = delivery{req.Header.Clone(), body}
		mu.Unlock()
	}))
	t.Cleanup(receiver.Close)
	p := s.startWorker(t, []string{"SOLVEQUEUE_CALLBACK_SECRET=" + keysTestShared},
		"--keys", keys, "--callback-allow-private", "--queues", "default=1")

	ctx := context.Background()
	for _, j := range []struct {
		id, key string
		taskID  int64
	}{{"job-alpha", "alpha", 21}, {"job-beta", "beta", 22}, {"job-producer", "", 0}} {
		_, err := s.client.Submit(ctx, enqueue.Job{ID: j.id, CallbackURL: receiver.URL, KeyName: j.key, GatewayTaskID: j.taskID,
			Task: map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": "6Le-" + j.id}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 3
	}, hangGuard, 20*time.Millisecond, "worker log:\n%s", p.logs.String())

	beta := cliRun(t, map[string]string{"SOLVEQUEUE_CALLBACK_SECRET": keysTestShared}, "", "keys", "callback-secret", "beta", "--keys", keys)
	require.Equal(t, 0, beta.code, beta.stderr)
	secrets := map[string]string{"job-alpha": keysTestAlphaSecret, "job-beta": strings.TrimSpace(beta.stdout), "job-producer": keysTestShared}
	mu.Lock()
	defer mu.Unlock()
	for job, d := range got {
		for other, secret := range secrets {
			require.Equal(t, job == other, signedWith(secret, d.header, d.body), "%s's delivery checked with %s's secret", job, other)
		}
	}
	rc, err := redisconn.Open(ctx, s.redis.URL(), 0)
	require.NoError(t, err)
	defer rc.Close()
	dump := workertest.Dump(t, rc)
	for _, secret := range secrets {
		require.NotContains(t, p.logs.String(), secret)
		require.NotContains(t, dump, secret)
	}
}

// signedWith is a receiver's check of a delivery's signature, as the README writes it.
func signedWith(secret string, h http.Header, body []byte) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(h.Get("X-Solvequeue-Timestamp") + "." + h.Get("X-Solvequeue-Delivery") + "."))
	m.Write(body)
	return hmac.Equal([]byte("v1="+hex.EncodeToString(m.Sum(nil))), []byte(h.Get("X-Solvequeue-Signature")))
}
