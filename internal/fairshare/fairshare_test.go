package fairshare_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/solvequeue/solvequeue/internal/fairshare"
)

func TestReserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ capacity, want int }{{0, 0}, {1, 0}, {2, 1}, {8, 1}, {20, 2}, {1000, 100}} {
		require.Equal(t, tc.want, fairshare.Reserve(tc.capacity), "capacity %d", tc.capacity)
	}
}

// TestAdmit fills a Share with the jobs of held (key by key, each admitted or taken), then asks
// whether one more job of key is admitted.
func TestAdmit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		capacity, reserve int
		held              map[string]int
		seen              map[string]time.Duration // keys whose job started this long ago, then released
		gatewayKeys       int
		key               string
		admitted          bool
	}{
		{name: "below the line a single tenant takes every slot up to it", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 6}, key: "noisy", admitted: true},
		{name: "past the line a single tenant uses every slot: no other key to keep the reserve for", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 7}, key: "noisy", admitted: true},
		{name: "past the line a single tenant is held once another key's job started lately", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 7}, seen: map[string]time.Duration{"quiet": 9 * time.Minute}, key: "noisy", admitted: false},
		{name: "a key seen longer ago than the window does not count", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 7}, seen: map[string]time.Duration{"quiet": 11 * time.Minute}, key: "noisy", admitted: true},
		{name: "past the line a single tenant is held when the gateways know two keys", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 7}, gatewayKeys: 2, key: "noisy", admitted: false},
		{name: "past the line a key with nothing in hand is admitted", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 7}, key: "quiet", admitted: true},
		{name: "the jobs without a key are one more key", capacity: 8, reserve: 1,
			held: map[string]int{"noisy": 7}, key: "", admitted: true},
		{name: "past the line a key below its share is admitted", capacity: 10, reserve: 1,
			held: map[string]int{"a": 7, "b": 1, "c": 1}, key: "b", admitted: true},
		{name: "past the line a key at its share is held", capacity: 10, reserve: 1,
			held: map[string]int{"a": 5, "b": 4}, key: "b", admitted: false},
		{name: "no reserve: everything is admitted", capacity: 8, reserve: 0,
			held: map[string]int{"noisy": 8}, key: "noisy", admitted: true},
		{name: "a single slot: everything is admitted", capacity: 1, reserve: 1,
			held: map[string]int{"noisy": 1}, key: "noisy", admitted: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
			clock := now
			s := fairshare.New(tc.capacity, tc.reserve).WithClock(func() time.Time { return clock })
			s.SetGatewayKeys(tc.gatewayKeys)
			for key, ago := range tc.seen {
				clock = now.Add(-ago)
				s.Take(key)()
			}
			clock = now
			for key, n := range tc.held {
				for range n {
					s.Take(key)
				}
			}
			release, admitted := s.Admit(tc.key)
			require.Equal(t, tc.admitted, admitted)
			require.Equal(t, admitted, release != nil)
		})
	}
}

// TestRelease: a release gives the slot back once, however often it is called, and a key whose
// last slot is given back no longer counts among the keys in hand.
func TestRelease(t *testing.T) {
	t.Parallel()
	s := fairshare.New(4, 1)
	s.SetGatewayKeys(2)
	var releases []func()
	for range 3 {
		release, ok := s.Admit("noisy")
		require.True(t, ok)
		releases = append(releases, release)
	}
	_, ok := s.Admit("noisy")
	require.False(t, ok, "past the line, a single tenant is held")
	releases[0]()
	releases[0]()
	mine, all := s.InUse("noisy")
	require.Equal(t, []int{2, 2}, []int{mine, all})
	quiet, ok := s.Admit("quiet")
	require.True(t, ok)
	quiet()
	mine, all = s.InUse("quiet")
	require.Equal(t, []int{0, 2}, []int{mine, all})
	var nilShare *fairshare.Share
	_, ok = nilShare.Admit("x")
	require.True(t, ok)
}
