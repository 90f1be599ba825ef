package worker_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/callback"
	"github.com/solvequeue/solvequeue/worker"
	"github.com/solvequeue/solvequeue/worker/workertest"
)

// genuine is a receiver's check of a delivery, written from the README rather than from package
// callback: "v1=" and the hex HMAC-SHA256 under secret of the timestamp, '.', the delivery ID,
// '.' and the body, compared in constant time.
func genuine(secret string, h http.Header, body []byte) bool {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(h.Get("X-Solvequeue-Timestamp") + "." + h.Get("X-Solvequeue-Delivery") + "."))
	m.Write(body)
	return hmac.Equal([]byte("v1="+hex.EncodeToString(m.Sum(nil))), []byte(h.Get("X-Solvequeue-Signature")))
}

// TestCallbackSignedPerKey: the callbacks of a gateway key's jobs are signed with that key's own
// secret, over the timestamp, the delivery ID and the body: the keys file's callbackSecret, or
// else one derived from the shared secret (what 'solvequeue keys callback-secret NAME' prints);
// a producer's job keeps the shared secret. A delivery verifies with its own secret only, so no
// tenant can check, or forge, another's; changing its timestamp, its delivery ID or its body
// breaks the signature; a retried delivery keeps its ID. No secret reaches Redis or a log line.
func TestCallbackSignedPerKey(t *testing.T) {
	t.Parallel()
	const (
		alphaSecret = "cb-alpha-own-secret-0f3e9a71"
		betaSecret  = "cb-beta-own-secret-6b2d4c85"
	)
	b := setupCallbacks(t)
	b.start(t, func(c *worker.Config) {
		c.CallbackKeySecrets = map[string]string{"alpha": alphaSecret, "beta": betaSecret}
	})
	r := newReceiver(t)
	r.refuseFirst.Store(true) // every delivery is tried twice: its payload waits in Redis between
	before := time.Now().Unix()
	b.submitAs(t, "job-alpha", "plain-key", r.srv.URL, "alpha", 11)
	b.submitAs(t, "job-beta", "plain-key", r.srv.URL, "beta", 12)
	b.submitAs(t, "job-gamma", "plain-key", r.srv.URL, "gamma", 13) // a key the worker has no secret for
	b.submitAs(t, "job-producer", "plain-key", r.srv.URL, "", 0)
	r.wait(t, 4) // four tries, the first ones refused: deliveries wait in Redis for their retries
	dumpWhileRetried := workertest.Dump(t, b.rig.RC)
	require.Eventually(t, func() bool { return b.callbacks(t, "delivered") == 4 }, 30*time.Second, 20*time.Millisecond)
	after := time.Now().Unix()

	gammaSecret := callback.KeySecret(callbackSecret, "gamma")
	secrets := map[string]string{"job-alpha": alphaSecret, "job-beta": betaSecret, "job-gamma": gammaSecret, "job-producer": callbackSecret}
	type try struct {
		header http.Header
		body   []byte
	}
	tries := map[string][]try{}
	r.mu.Lock()
	for i, body := range r.bodies {
		var m map[string]any
		require.NoError(t, json.Unmarshal(body, &m))
		tries[m["id"].(string)] = append(tries[m["id"].(string)], try{r.headers[i], body})
	}
	r.mu.Unlock()

	deliveryIDs := map[string]bool{}
	for job, own := range secrets {
		require.Len(t, tries[job], 2, "%s: refused once, then delivered", job)
		first, second := tries[job][0], tries[job][1]
		id := first.header.Get(callback.DeliveryHeader)
		require.NotEmpty(t, id)
		require.Equal(t, id, second.header.Get(callback.DeliveryHeader), "%s: a retried delivery keeps its ID", job)
		require.False(t, deliveryIDs[id], "%s: each delivery has an ID of its own", job)
		deliveryIDs[id] = true
		for _, tr := range tries[job] {
			ts, err := strconv.ParseInt(tr.header.Get(callback.TimestampHeader), 10, 64)
			require.NoError(t, err)
			require.True(t, ts >= before && ts <= after, "%s: the timestamp %d is when the try was sent", job, ts)
			for other, secret := range secrets {
				require.Equal(t, other == job, genuine(secret, tr.header, tr.body),
					"%s's delivery checked with %s's secret", job, other)
			}
		}
		// Each part the signature covers, changed, breaks it.
		changed := map[string]func(h http.Header, body []byte) (http.Header, []byte){
			"timestamp": func(h http.Header, body []byte) (http.Header, []byte) {
				ts, _ := strconv.ParseInt(h.Get(callback.TimestampHeader), 10, 64)
				h.Set(callback.TimestampHeader, strconv.FormatInt(ts+1, 10))
				return h, body
			},
			"delivery ID": func(h http.Header, body []byte) (http.Header, []byte) {
				h.Set(callback.DeliveryHeader, h.Get(callback.DeliveryHeader)+"0")
				return h, body
			},
			"body": func(h http.Header, body []byte) (http.Header, []byte) {
				return h, append(append([]byte(nil), body...), ' ')
			},
		}
		for part, change := range changed {
			h, body := change(second.header.Clone(), second.body)
			require.False(t, genuine(own, h, body), "%s: a changed %s must not verify", job, part)
		}
	}

	dumpAfter := workertest.Dump(t, b.rig.RC)
	require.Contains(t, dumpWhileRetried, callback.TaskType, "the dump saw the deliveries waiting in Redis")
	for _, secret := range []string{alphaSecret, betaSecret, gammaSecret, callbackSecret,
		callback.KeySecret(callbackSecret, "alpha"), callback.KeySecret(callbackSecret, "beta")} {
		require.NotContains(t, dumpWhileRetried, secret)
		require.NotContains(t, dumpAfter, secret)
		require.NotContains(t, b.logs.String(), secret)
	}
}
