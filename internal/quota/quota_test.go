package quota_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/quota"
)

var start = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// clocked is a Store on miniredis, whose clock (the scripts' TIME) the test moves: expiry and
// the rate limit move by events the test makes, not by waiting.
func clocked(t *testing.T) (*quota.Store, *miniredis.Miniredis) {
	t.Helper()
	mr := miniredis.RunT(t)
	mr.SetTime(start)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	return quota.New(rc), mr
}

func TestAdmitChecksEveryQuota(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limits quota.Limits
		bytes  []int64 // one admission per entry, each with these image bytes
		want   quota.Refusal
	}{
		{"in flight", quota.Limits{InFlight: 2}, []int64{0, 0, 0}, quota.Refusal{Kind: quota.InFlight, Limit: 2, Used: 2}},
		{"waiting", quota.Limits{InFlight: 5, Waiting: 1}, []int64{0, 0}, quota.Refusal{Kind: quota.Waiting, Limit: 1, Used: 1}},
		{"image bytes", quota.Limits{ImageBytes: 100}, []int64{60, 40, 1}, quota.Refusal{Kind: quota.ImageBytes, Limit: 100, Used: 100}},
		{"a job without an image passes a full byte quota", quota.Limits{ImageBytes: 100}, []int64{100, 0}, quota.Refusal{}},
		{"an image larger than the whole quota", quota.Limits{ImageBytes: 100}, []int64{101}, quota.Refusal{Kind: quota.ImageBytes, Limit: 100}},
		{"no limits", quota.Limits{}, []int64{1 << 30, 1 << 30, 0, 0, 0}, quota.Refusal{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, _ := clocked(t)
			ctx := context.Background()
			var last quota.Refusal
			for i, b := range tt.bytes {
				r, err := s.Admit(ctx, "q", "k", tt.limits, quota.Job{ID: fmt.Sprint("job-", i), ImageBytes: b, TTL: time.Hour})
				require.NoError(t, err)
				if i < len(tt.bytes)-1 {
					require.False(t, r.Refused(), "admission %d: %+v", i+1, r)
				}
				last = r
			}
			require.Equal(t, tt.want, last)
			u, err := s.Read(ctx, "q", "k")
			require.NoError(t, err)
			admitted := int64(len(tt.bytes))
			if tt.want.Refused() {
				admitted--
			}
			require.Equal(t, admitted, u.InFlight, "a refused job is not recorded")
		})
	}
}

// TestTakenAndEnded: a job taken by a worker leaves the waiting jobs and keeps its slot in flight;
// an ended one frees both and its image bytes; telling either twice changes nothing more; and
// another key, or the same key name in another queue, is unaffected.
func TestTakenAndEnded(t *testing.T) {
	t.Parallel()
	s, mr := clocked(t)
	ctx := context.Background()
	l := quota.Limits{InFlight: 2, Waiting: 1, ImageBytes: 100}
	admit := func(queue, key, id string, b int64) quota.Refusal {
		r, err := s.Admit(ctx, queue, key, l, quota.Job{ID: id, ImageBytes: b, TTL: time.Hour})
		require.NoError(t, err)
		return r
	}
	require.False(t, admit("q", "k", "a", 70).Refused())
	require.Equal(t, quota.Waiting, admit("q", "k", "b", 10).Kind)
	require.False(t, admit("q", "other", "b", 10).Refused(), "another key has its own quotas")
	require.False(t, admit("r", "k", "b", 10).Refused(), "the same name in another queue has its own quotas")

	for range 2 {
		require.NoError(t, s.Taken(ctx, "q", "k", "a"))
	}
	require.Equal(t, quota.ImageBytes, admit("q", "k", "b", 40).Kind, "70 + 40 bytes are over 100")
	require.False(t, admit("q", "k", "b", 30).Refused())
	require.NoError(t, s.Taken(ctx, "q", "k", "b"))
	require.Equal(t, quota.Refusal{Kind: quota.InFlight, Limit: 2, Used: 2}, admit("q", "k", "c", 0))

	for range 2 {
		require.NoError(t, s.Ended(ctx, "q", "k", "a"))
	}
	u, err := s.Read(ctx, "q", "k")
	require.NoError(t, err)
	require.Equal(t, quota.Usage{InFlight: 1, Waiting: 0, ImageBytes: 30}, u)
	require.False(t, admit("q", "k", "c", 70).Refused(), "a's slot and bytes are free again")
	require.False(t, admit("q", "k", "c", 70).Refused(), "admitting the same job again counts it once")
	u, err = s.Read(ctx, "q", "k")
	require.NoError(t, err)
	require.Equal(t, quota.Usage{InFlight: 2, Waiting: 1, ImageBytes: 100}, u)

	for _, k := range mr.Keys() {
		require.True(t, strings.Contains(k, "{q}") || strings.Contains(k, "{r}"), "%s carries its queue's hash tag", k)
	}
}

// TestEntriesExpireByThemselves: a job whose end is never told frees its slot and its bytes once
// its TTL is over, counted on Redis's clock.
func TestEntriesExpireByThemselves(t *testing.T) {
	t.Parallel()
	s, mr := clocked(t)
	ctx := context.Background()
	l := quota.Limits{InFlight: 1, ImageBytes: 100}
	r, err := s.Admit(ctx, "q", "k", l, quota.Job{ID: "lost", ImageBytes: 100, TTL: 10 * time.Minute})
	require.NoError(t, err)
	require.False(t, r.Refused())

	mr.SetTime(start.Add(10*time.Minute - time.Millisecond))
	r, err = s.Admit(ctx, "q", "k", l, quota.Job{ID: "next", ImageBytes: 1, TTL: 10 * time.Minute})
	require.NoError(t, err)
	require.Equal(t, quota.InFlight, r.Kind, "before its TTL is over the lost job holds its slot")

	mr.SetTime(start.Add(10 * time.Minute))
	r, err = s.Admit(ctx, "q", "k", l, quota.Job{ID: "next", ImageBytes: 100, TTL: 10 * time.Minute})
	require.NoError(t, err)
	require.False(t, r.Refused(), "once it is over, the slot and the bytes are free")
	u, err := s.Read(ctx, "q", "k")
	require.NoError(t, err)
	require.Equal(t, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 100}, u)
	require.Greater(t, mr.TTL("solvequeue:gateway:{q}:inflight:k"), time.Duration(0), "the keys expire by themselves too")
}

// TestAllowIsGCRA: a burst goes through at once and the next request is refused; each interval
// lets one more through; refused requests do not push the limit further away.
func TestAllowIsGCRA(t *testing.T) {
	t.Parallel()
	s, mr := clocked(t)
	ctx := context.Background()
	allowed := func() int {
		n := 0
		for range 10 {
			ok, err := s.Allow(ctx, "q", "k", 2, 3)
			require.NoError(t, err)
			if ok {
				n++
			}
		}
		return n
	}
	require.Equal(t, 3, allowed(), "the burst")
	mr.SetTime(start.Add(500 * time.Millisecond))
	require.Equal(t, 1, allowed(), "half a second at 2/s is one more")
	mr.SetTime(start.Add(10 * time.Second))
	require.Equal(t, 3, allowed(), "a long idle time gives back the burst, no more")

	ok, err := s.Allow(ctx, "q", "other", 2, 3)
	require.NoError(t, err)
	require.True(t, ok, "another key has its own limit")
	ok, err = s.Allow(ctx, "q", "none", 0, 0)
	require.NoError(t, err)
	require.True(t, ok, "no rate is no limit")
}

// TestAdmitCountsTheRateLimitFirst: Admit with a rate limit counts the request against it before
// it reads a quota, in one script: a request over the limit is refused as RateLimit and leaves
// every count of the key as it was; one within the limit spends its part of it even when a
// quota then refuses its job; and Allow and Admit share one count per key.
func TestAdmitCountsTheRateLimitFirst(t *testing.T) {
	t.Parallel()
	s, mr := clocked(t)
	ctx := context.Background()
	l := quota.Limits{Rate: quota.Rate{PerSecond: 1, Burst: 1}, InFlight: 1, ImageBytes: 100}
	rateLimited := quota.Refusal{Kind: quota.RateLimit}
	steps := []struct {
		name  string
		at    time.Duration // Redis's clock, from start
		id    string        // the job admitted; "" calls Allow instead
		bytes int64
		want  quota.Refusal // for Allow: RateLimit is a refusal
		usage quota.Usage   // what the key has in use afterwards
	}{
		{"the burst", 0, "a", 60, quota.Refusal{}, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"over the rate: nothing recorded", 0, "b", 10, rateLimited, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"a job admitted already is still over the rate", 0, "a", 60, rateLimited, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"within the rate, over a quota", time.Second, "b", 10, quota.Refusal{Kind: quota.InFlight, Limit: 1, Used: 1},
			quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"the refused job spent the second's request", time.Second, "c", 10, rateLimited, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"Allow spends the same count", 2 * time.Second, "", 0, quota.Refusal{}, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"so Admit is over it", 2 * time.Second, "c", 10, rateLimited, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"and Admit's count is Allow's", 3 * time.Second, "c", 0, quota.Refusal{Kind: quota.InFlight, Limit: 1, Used: 1},
			quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
		{"Allow after Admit", 3 * time.Second, "", 0, rateLimited, quota.Usage{InFlight: 1, Waiting: 1, ImageBytes: 60}},
	}
	for _, st := range steps {
		mr.SetTime(start.Add(st.at))
		var got quota.Refusal
		if st.id == "" {
			ok, err := s.Allow(ctx, "q", "k", l.Rate.PerSecond, l.Rate.Burst)
			require.NoError(t, err, st.name)
			if !ok {
				got = rateLimited
			}
		} else {
			var err error
			got, err = s.Admit(ctx, "q", "k", l, quota.Job{ID: st.id, ImageBytes: st.bytes, TTL: time.Hour})
			require.NoError(t, err, st.name)
		}
		require.Equal(t, st.want, got, st.name)
		u, err := s.Read(ctx, "q", "k")
		require.NoError(t, err, st.name)
		require.Equal(t, st.usage, u, st.name)
	}

	// Without a rate, Admit neither reads nor moves the key's rate limit.
	mr.SetTime(start.Add(3 * time.Second))
	r, err := s.Admit(ctx, "q", "other", quota.Limits{InFlight: 1}, quota.Job{ID: "x", TTL: time.Hour})
	require.NoError(t, err)
	require.False(t, r.Refused())
	require.False(t, mr.Exists("solvequeue:gateway:{q}:rate:other"), "no rate, no rate key")
}
