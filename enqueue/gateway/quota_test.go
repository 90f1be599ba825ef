package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/enqueue/gateway"
	"github.com/solvequeue/solvequeue/internal/balance"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/quota"
)

const (
	busyKey   = "gk-busy-0a1b2c3d4e5f60718293"
	queuedKey = "gk-queued-a9b8c7d6e5f4a3b2c1"
	imagesKey = "gk-images-5e6f7a8b9c0d1e2f3a"
	otherKey  = "gk-other-11223344556677889900"
)

// quotaKeysFile gives each quota a key that has only that one (the others off with 0), and
// "other", with the defaults, in the same queue as busy.
var quotaKeysFile = "keys:\n" +
	"  - {name: busy, key: " + busyKey + ", queue: qbusy, maxJobsInFlight: 2, maxJobsWaiting: 0, maxImageBytesWaiting: 0}\n" +
	"  - {name: queued, key: " + queuedKey + ", queue: qqueued, maxJobsInFlight: 0, maxJobsWaiting: 2, maxImageBytesWaiting: 0}\n" +
	"  - {name: images, key: " + imagesKey + ", queue: qimages, maxJobsInFlight: 0, maxJobsWaiting: 0, maxImageBytesWaiting: 64KiB}\n" +
	"  - {name: other, key: " + otherKey + ", queue: qbusy}\n"

// imageBody is an image body of 20 KiB as sent (base64): over enqueue's inline limit, so each is
// an image body key of its own in Redis; three fit in 64 KiB, four do not.
var imageBody = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\x89PNG", 15<<10/4)))

func imageTask() map[string]any { return map[string]any{"type": "ImageToTextTask", "body": imageBody} }

// TestQuotas: a key filled to one of its quotas gets ERROR_NO_SLOT_AVAILABLE for one more job, on
// createTask and on in.php, naming the quota and the key; nothing new is queued, no image body is
// written and the Idempotency-Key stays free; another key (in the same queue) is unaffected; and
// once the worker says a job was taken (maxJobsWaiting) or ended (every quota), a slot is free
// again.
func TestQuotas(t *testing.T) {
	t.Parallel()
	recaptchaIn := func(key string) url.Values {
		return params("key", key, "method", "userrecaptcha", "googlekey", "6Le-abc", "pageurl", "https://shop.example/login")
	}
	tests := []struct {
		name, clientKey, keyName, queue, field string
		fill                                   int
		task                                   func() map[string]any
		in                                     url.Values
		taken                                  bool // a taken job frees a slot; else only an ended one does
	}{
		{"jobs in flight", busyKey, "busy", "qbusy", "maxJobsInFlight", 2, func() map[string]any { return recaptchaTask("k") },
			recaptchaIn(busyKey), false},
		{"jobs waiting", queuedKey, "queued", "qqueued", "maxJobsWaiting", 2, func() map[string]any { return recaptchaTask("k") },
			recaptchaIn(queuedKey), true},
		{"image bytes", imagesKey, "images", "qimages", "maxImageBytesWaiting", 3, imageTask,
			params("key", imagesKey, "method", "base64", "body", imageBody), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ks, err := gateway.ParseKeys("keys.yaml", []byte(quotaKeysFile))
			require.NoError(t, err)
			b := setup(t, ks)
			ctx := context.Background()
			var jobs []string
			for range tt.fill {
				id := taskID(t, b.call(t, gateway.MethodCreateTask, create(tt.clientKey, tt.task())))
				jobID, err := b.handler.JobID(ctx, tt.keyName, id)
				require.NoError(t, err)
				jobs = append(jobs, jobID)
			}
			requirePending(t, b, tt.queue, tt.fill)
			bodies := countKeys(t, b, keys.BodyPrefix+"*")

			a := b.call(t, gateway.MethodCreateTask, create(tt.clientKey, tt.task()), gateway.IdempotencyHeader, "retry-1")
			requireError(t, a, 1, gateway.CodeNoSlotAvailable)
			require.Contains(t, a["errorDescription"], tt.field)
			require.Contains(t, a["errorDescription"], `"`+tt.keyName+`"`)
			require.Equal(t, "ERROR_NO_SLOT_AVAILABLE", b.tcCall(t, viaForm, gateway.PathIn, tt.in, nil))
			answer := b.tcCall(t, viaForm, gateway.PathIn, withParam(tt.in, "json", "1"), nil)
			require.Contains(t, answer, `"request":"ERROR_NO_SLOT_AVAILABLE"`)
			require.Contains(t, answer, tt.field)
			requirePending(t, b, tt.queue, tt.fill)
			require.Equal(t, bodies, countKeys(t, b, keys.BodyPrefix+"*"), "no image body written")
			require.Equal(t, 0, countKeys(t, b, "solvequeue:gateway:{"+tt.queue+"}:idem:*"), "no Idempotency-Key taken")

			// Another key is unaffected, even in the same queue.
			taskID(t, b.call(t, gateway.MethodCreateTask, create(otherKey, recaptchaTask("k"))))
			pending := tt.fill
			if tt.queue == "qbusy" {
				pending++ // other's job
			}

			store := quota.New(b.rc)
			require.NoError(t, store.Taken(ctx, tt.queue, tt.keyName, jobs[0]))
			if !tt.taken {
				requireError(t, b.call(t, gateway.MethodCreateTask, create(tt.clientKey, tt.task())), 1, gateway.CodeNoSlotAvailable)
				require.NoError(t, store.Ended(ctx, tt.queue, tt.keyName, jobs[0]))
			}
			taskID(t, b.call(t, gateway.MethodCreateTask, create(tt.clientKey, tt.task()), gateway.IdempotencyHeader, "retry-1"))
			requirePending(t, b, tt.queue, pending+1)
			requireError(t, b.call(t, gateway.MethodCreateTask, create(tt.clientKey, tt.task())), 1, gateway.CodeNoSlotAvailable)
		})
	}
}

// TestQuotaDefaultsOnAnOpenGateway: without a keys file, the one local key has the default
// quotas, counted like any key's.
func TestQuotaDefaultsOnAnOpenGateway(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	taskID(t, b.call(t, gateway.MethodCreateTask, create("anything", recaptchaTask("k"))))
	u, err := quota.New(b.rc).Read(context.Background(), enqueue.DefaultQueue, gateway.LocalKeyName)
	require.NoError(t, err)
	require.Equal(t, quota.Usage{InFlight: 1, Waiting: 1}, u, "the local key is counted against the default quotas")
}

// TestRateLimitSharedByGateways: two gateways on one Redis share a key's rateLimit. With one
// request per 100 s and a burst of 1, of twenty requests sent back to back, half to each gateway
// and on both protocols, exactly one is let through (each gateway counting alone would let one
// through each).
func TestRateLimitSharedByGateways(t *testing.T) {
	t.Parallel()
	ks, err := gateway.ParseKeys("keys.yaml", []byte("keys:\n  - {name: slow, key: "+alphaKey+", queue: slow, rateLimit: 0.01}\n"))
	require.NoError(t, err)
	b := setup(t, ks)
	client, err := enqueue.NewClient(enqueue.Config{Redis: b.rc, Shared: true})
	require.NoError(t, err)
	second, err := gateway.NewHandler(gateway.Config{Client: client, Redis: b.rc, Keys: ks, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	b2 := &testBundle{url: startHTTP(t, second)}
	require.NoError(t, balance.Write(context.Background(), b.rc, balance.Balance{Balance: 12.34, ReadAt: time.Now()}, 0))

	allowed := 0
	for range 10 {
		a := b.call(t, gateway.MethodGetBalance, map[string]any{"clientKey": alphaKey})
		if a["errorCode"] == dialectNoSlot {
			require.Contains(t, a["errorDescription"], gateway.CodeRateLimited)
		} else {
			require.Equal(t, json.Number("12.34"), a["balance"])
			allowed++
		}
		switch answer := b2.tcCall(t, viaGET, gateway.PathRes, params("key", alphaKey, "action", "getbalance"), nil); answer {
		case "ERROR_NO_SLOT_AVAILABLE":
		default:
			require.Equal(t, "12.34", answer)
			allowed++
		}
	}
	require.Equal(t, 1, allowed, "one request in total across both gateways")
}

func withParam(v url.Values, k, value string) url.Values {
	out := url.Values{}
	for key, vs := range v {
		out[key] = vs
	}
	out.Set(k, value)
	return out
}

func countKeys(t *testing.T, b *testBundle, pattern string) int {
	t.Helper()
	ks, err := b.rc.Keys(context.Background(), pattern).Result()
	require.NoError(t, err)
	return len(ks)
}

// limitedKey has a rate limit of one request per 100 s (a burst of one) and room for more jobs
// than the tests make, in a queue of its own; plainKey has the same quotas and no rate limit.
const (
	limitedKey = "gk-limited-4d5e6f7a8b9c0d1e2f"
	plainKey   = "gk-plain-9f8e7d6c5b4a39281706"
)

var rateKeysFile = "keys:\n" +
	"  - {name: limited, key: " + limitedKey + ", queue: qlimited, rateLimit: 0.01, maxJobsInFlight: 100}\n" +
	"  - {name: plain, key: " + plainKey + ", queue: qplain, maxJobsInFlight: 100}\n"

// TestRateLimitComesFirst: once a key's rate limit is spent, every createTask and in.php request
// of it is RATE_LIMITED, an invalid one too (the rate limit is checked first, as for any
// method), and none of them leaves a trace: the key's quota counts, its queue and its
// Idempotency-Keys are as they were.
func TestRateLimitComesFirst(t *testing.T) {
	t.Parallel()
	ks, err := gateway.ParseKeys("keys.yaml", []byte(rateKeysFile))
	require.NoError(t, err)
	b := setup(t, ks)
	ctx := context.Background()
	taskID(t, b.call(t, gateway.MethodCreateTask, create(limitedKey, recaptchaTask("k"))))
	usage := quota.Usage{InFlight: 1, Waiting: 1}

	in := params("key", limitedKey, "method", "userrecaptcha", "googlekey", "6Le-abc", "pageurl", "https://shop.example/login", "json", "1")
	tests := []struct {
		name string
		call func() string // the answer, as text
	}{
		{"createTask", func() string {
			return fmt.Sprint(b.call(t, gateway.MethodCreateTask, create(limitedKey, recaptchaTask("k"))))
		}},
		{"createTask with an Idempotency-Key", func() string {
			return fmt.Sprint(b.call(t, gateway.MethodCreateTask, create(limitedKey, recaptchaTask("k")), gateway.IdempotencyHeader, "retry-1"))
		}},
		{"createTask with an invalid task", func() string {
			return fmt.Sprint(b.call(t, gateway.MethodCreateTask, create(limitedKey, map[string]any{"type": "NoSuchTask"})))
		}},
		{"createTask without a task", func() string {
			return fmt.Sprint(b.call(t, gateway.MethodCreateTask, map[string]any{"clientKey": limitedKey}))
		}},
		{"in.php", func() string { return b.tcCall(t, viaForm, gateway.PathIn, in, nil) }},
		{"in.php with an unknown method", func() string {
			return b.tcCall(t, viaForm, gateway.PathIn, withParam(in, "method", "nosuchmethod"), nil)
		}},
	}
	for _, tt := range tests {
		answer := tt.call()
		require.Contains(t, answer, "ERROR_NO_SLOT_AVAILABLE", tt.name)
		require.Contains(t, answer, gateway.CodeRateLimited, tt.name)
		u, err := quota.New(b.rc).Read(ctx, "qlimited", "limited")
		require.NoError(t, err)
		require.Equal(t, usage, u, "%s: the quota counts are untouched", tt.name)
		requirePending(t, b, "qlimited", 1)
		require.Equal(t, 0, countKeys(t, b, "solvequeue:gateway:{qlimited}:idem:*"), "%s: no Idempotency-Key taken", tt.name)
	}
}

// TestRateLimitCostsCreateTaskNoCommand: a createTask of a key with a rate limit makes Redis run
// the commands of one without plus one GET and one SET of the rate limit (INFO commandstats,
// which counts the commands scripts run too): no script call of its own, not even a second TIME,
// so the rate limit is counted inside the quotas' script, in its round trip.
func TestRateLimitCostsCreateTaskNoCommand(t *testing.T) {
	t.Parallel()
	ks, err := gateway.ParseKeys("keys.yaml", []byte(
		"keys:\n  - {name: limited, key: "+limitedKey+", queue: qlimited, rateLimit: 1000, maxJobsInFlight: 100}\n"+
			"  - {name: plain, key: "+plainKey+", queue: qplain, maxJobsInFlight: 100}\n"))
	require.NoError(t, err)
	b := setup(t, ks)
	const n = 20 // fewer than the 1,000 the burst allows, and with the warm-ups within one block of taskIds
	commands := map[string]map[string]int{}
	for _, clientKey := range []string{plainKey, limitedKey} {
		// The first createTask of a key records its name and loads what the gateway keeps.
		taskID(t, b.call(t, gateway.MethodCreateTask, create(clientKey, recaptchaTask("k"))))
		before := commandCalls(t, b)
		for range n {
			taskID(t, b.call(t, gateway.MethodCreateTask, create(clientKey, recaptchaTask("k"))))
		}
		after := commandCalls(t, b)
		ran := map[string]int{}
		for cmd, calls := range after {
			// PEXPIRE runs when a quota key's TTL fell behind since the last admission, a
			// matter of milliseconds; INFO is the test's own.
			if d := calls - before[cmd]; d > 0 && cmd != "info" && cmd != "pexpire" {
				ran[cmd] = d
			}
		}
		commands[clientKey] = ran
	}
	want := maps.Clone(commands[plainKey])
	require.Equal(t, n, want["time"], "one script reads Redis's clock per createTask")
	want["get"] += n
	want["set"] += n
	require.Equal(t, want, commands[limitedKey], "%d createTasks with a rate limit against as many without", n)
	u, err := quota.New(b.rc).Read(context.Background(), "qlimited", "limited")
	require.NoError(t, err)
	require.Equal(t, int64(n+1), u.InFlight, "every createTask was admitted")
}

// commandCalls reads how many times Redis ran each command (INFO commandstats).
func commandCalls(t *testing.T, b *testBundle) map[string]int {
	t.Helper()
	info, err := b.rc.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	calls := map[string]int{}
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		c, err := strconv.Atoi(n)
		require.NoError(t, err, line)
		calls[strings.TrimPrefix(name, "cmdstat_")] = c
	}
	return calls
}

// TestKeyWithoutQuotasRecordsNothing: a job that no quota of its key counts (none set, or only
// an image-bytes quota and a job without an image) has nothing to check or record, so its
// createTask runs no admission at all (one script call per createTask: the enqueue's), and its
// key's rate limit, when it has one, still holds.
func TestKeyWithoutQuotasRecordsNothing(t *testing.T) {
	t.Parallel()
	const freeKey, freeLimitedKey = "gk-free-0a1b2c3d4e5f60718293", "gk-free-limited-1b2c3d4e5f6071829304"
	ks, err := gateway.ParseKeys("keys.yaml", []byte("keys:\n"+
		"  - {name: free, key: "+freeKey+", queue: qfree, maxJobsInFlight: 0, maxJobsWaiting: 0}\n"+
		"  - {name: freelimited, key: "+freeLimitedKey+", queue: qfreelimited, rateLimit: 0.01, maxJobsInFlight: 0, maxJobsWaiting: 0, maxImageBytesWaiting: 0}\n"))
	require.NoError(t, err)
	b := setup(t, ks)
	taskID(t, b.call(t, gateway.MethodCreateTask, create(freeKey, recaptchaTask("k")))) // records the key's name
	before := commandCalls(t, b)
	const n = 10
	for range n {
		taskID(t, b.call(t, gateway.MethodCreateTask, create(freeKey, recaptchaTask("k"))))
	}
	after := commandCalls(t, b)
	require.Equal(t, n, after["evalsha"]-before["evalsha"], "one script call per createTask: the enqueue's")
	require.Zero(t, after["zadd"]-before["zadd"], "no job recorded in a quota")
	u, err := quota.New(b.rc).Read(context.Background(), "qfree", "free")
	require.NoError(t, err)
	require.Equal(t, quota.Usage{}, u)
	requirePending(t, b, "qfree", n+1)

	taskID(t, b.call(t, gateway.MethodCreateTask, create(freeLimitedKey, recaptchaTask("k"))))
	answer := fmt.Sprint(b.call(t, gateway.MethodCreateTask, create(freeLimitedKey, recaptchaTask("k"))))
	require.Contains(t, answer, gateway.CodeRateLimited, "the rate limit holds without quotas")
	requirePending(t, b, "qfreelimited", 1)
}
