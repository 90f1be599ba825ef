package attempt

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/enqueue"
	"github.com/solvequeue/solvequeue/internal/breaker"
	"github.com/solvequeue/solvequeue/internal/jobwire"
	"github.com/solvequeue/solvequeue/internal/keys"
	"github.com/solvequeue/solvequeue/internal/ledger"
	"github.com/solvequeue/solvequeue/internal/metrics"
	"github.com/solvequeue/solvequeue/internal/poll"
	"github.com/solvequeue/solvequeue/internal/quota"
	"github.com/solvequeue/solvequeue/worker/anysolver"
	"github.com/solvequeue/solvequeue/worker/anysolver/anysolvertest"
)

// quotaKeysSeen records the keys of the gateway's quotas that a client's commands name.
type quotaKeysSeen struct {
	mu   sync.Mutex
	seen []string
}

func (q *quotaKeysSeen) DialHook(next redis.DialHook) redis.DialHook { return next }

func (q *quotaKeysSeen) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		for _, a := range cmd.Args() {
			if s, ok := a.(string); ok && strings.HasPrefix(s, "solvequeue:gateway:") {
				q.mu.Lock()
				q.seen = append(q.seen, s)
				q.mu.Unlock()
			}
		}
		return next(ctx, cmd)
	}
}

func (q *quotaKeysSeen) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (q *quotaKeysSeen) count() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.seen)
}

// quotaSetup is a handler on miniredis and the fake AnySolver, with the hook that sees which
// quota keys its commands name.
func quotaSetup(t *testing.T) (*Handler, *redis.Client, *quotaKeysSeen) {
	t.Helper()
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	seen := &quotaKeysSeen{}
	rc.AddHook(seen)
	fake := anysolvertest.New(anysolvertest.Options{APIKeys: []string{"sk-quota"}, Balance: 100,
		Script: anysolvertest.DirectiveScript(nil)})
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	as, err := anysolver.New(anysolver.Config{BaseURL: srv.URL, APIKey: "sk-quota"})
	require.NoError(t, err)
	log := slog.New(slog.DiscardHandler)
	h := New(Params{Redis: rc, AnySolver: as, Lifetime: time.Hour, Poll: poll.Config{Fixed: true, Interval: time.Millisecond},
		RemoteTTL: jobwire.RemoteTaskTTL, Budgets: ledger.New(rc),
		Providers: &breaker.Providers{Redis: rc, Failures: breaker.ProviderFailuresDefault, Cooldown: breaker.ProviderCooldownDefault, Log: log},
		Observer:  metrics.NopObserver{}, Log: log, Now: time.Now})
	return h, rc, seen
}

// quotaJob is the payload of a gateway key's job (keyName "" for one that did not come through the
// gateway) whose createTask AnySolver answers as websiteKey's directive says.
func quotaJob(t *testing.T, keyName, websiteKey string, deadline time.Time) []byte {
	t.Helper()
	data, err := json.Marshal(jobwire.Payload{V: jobwire.PayloadVersion, KeyName: keyName, SubmittedAt: time.Now().UTC(), Deadline: deadline,
		Task: map[string]any{"type": "RecaptchaV2TaskProxyless", "websiteURL": "https://shop.example/login", "websiteKey": websiteKey}})
	require.NoError(t, err)
	return data
}

// TestWorkerTellsTheQuotas: an attempt of a gateway key's job takes it out of the key's waiting
// jobs; a job that ends in any outcome (solved, failed, dead, expired) frees its slot in flight,
// so that the key's next job is admitted; one that is only rescheduled keeps it. A job that did
// not come through the gateway sends no command about quotas at all.
func TestWorkerTellsTheQuotas(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, keyName, websiteKey string
		deadline                  time.Time
		want                      enqueue.State
		inFlight                  int64 // after the attempt
	}{
		{"solved", "k", "6Le-abc", time.Time{}, enqueue.StateSolved, 0},
		{"failed", "k", "sq:create=DOMAIN_BANNED", time.Time{}, enqueue.StateFailed, 0},
		{"dead", "k", "sq:create=UNKNOWN_PROVIDER_ERROR", time.Time{}, enqueue.StateDead, 0},
		{"expired", "k", "6Le-abc", time.Now().Add(-time.Minute), enqueue.StateFailed, 0},
		{"rescheduled", "k", "sq:create=SERVICE_UNAVAILABLE", time.Time{}, enqueue.StateRetrying, 1},
		{"not a gateway job", "", "6Le-abc", time.Time{}, enqueue.StateSolved, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, rc, seen := quotaSetup(t)
			ctx := context.Background()
			store := quota.New(rc)
			limits := quota.Limits{InFlight: 1, Waiting: 1}
			if tt.keyName != "" {
				r, err := store.Admit(ctx, "q", tt.keyName, limits, quota.Job{ID: "j1", TTL: time.Hour})
				require.NoError(t, err)
				require.False(t, r.Refused())
			}
			before := seen.count()
			require.NoError(t, rc.HSet(ctx, keys.AsynqTask("q", "j1"), "msg", "x").Err())
			_ = h.ProcessAs(ctx, "j1", "q", 0, jobwire.AsynqMaxRetryDefault, asynq.NewTask(jobwire.TaskType, quotaJob(t, tt.keyName, tt.websiteKey, tt.deadline)))
			rec, err := h.store.Load(ctx, "q", "j1")
			require.NoError(t, err)
			require.Equal(t, tt.want, rec.State)
			if tt.keyName == "" {
				require.Equal(t, before, seen.count(), "no command names a quota key")
				return
			}
			u, err := store.Read(ctx, "q", tt.keyName)
			require.NoError(t, err)
			require.Equal(t, quota.Usage{InFlight: tt.inFlight}, u, "taken: not waiting; ended: not in flight")
			r, err := store.Admit(ctx, "q", tt.keyName, limits, quota.Job{ID: "j2", TTL: time.Hour})
			require.NoError(t, err)
			require.Equal(t, tt.inFlight == 1, r.Refused(), "the key's next job: %+v", r)
		})
	}
}
