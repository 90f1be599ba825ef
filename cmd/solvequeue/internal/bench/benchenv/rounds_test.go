package benchenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSpreadOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		vals []float64
		want Spread
	}{
		{"no rounds", nil, Spread{}},
		{"one round", []float64{7}, Spread{Median: 7, Min: 7, Max: 7, N: 1}},
		{"odd count: the middle one", []float64{3, 1, 2}, Spread{Median: 2, Min: 1, Max: 3, N: 3}},
		{"odd count, five rounds", []float64{5, 100, 4, 1, 3}, Spread{Median: 4, Min: 1, Max: 100, N: 5}},
		{"even count: the mean of the two middle ones", []float64{4, 1, 3, 2}, Spread{Median: 2.5, Min: 1, Max: 4, N: 4}},
		{"even count, two rounds", []float64{10, 20}, Spread{Median: 15, Min: 10, Max: 20, N: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			in := append([]float64(nil), tt.vals...)
			require.Equal(t, tt.want, SpreadOf(tt.vals))
			require.Equal(t, in, tt.vals, "the rounds are left in their order")
		})
	}
}

// TestRatioSpread checks that a ratio is the median of the per-round ratios: a round's two runs
// share that moment's load, so their ratio cancels it, where the ratio of the two medians
// divides figures from different rounds.
func TestRatioSpread(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                string
		ours, base          []float64
		want                Spread
		ratioOfMediansDiffs bool
	}{
		{
			name: "load moves both sides alike: every round says 1",
			ours: []float64{100, 50, 80}, base: []float64{100, 50, 80},
			want: Spread{Median: 1, Min: 1, Max: 1, N: 3},
		},
		{
			// Round 3's baseline ran in a burst of load: the per-round ratios are 1, 1, 2, whose
			// median is 1; the medians, 90 over 50, would say 1.8.
			name: "a burst on one side of one round is dropped",
			ours: []float64{100, 50, 90}, base: []float64{100, 50, 45},
			want:                Spread{Median: 1, Min: 1, Max: 2, N: 3},
			ratioOfMediansDiffs: true,
		},
		{
			name: "even count of rounds",
			ours: []float64{2, 3, 4, 10}, base: []float64{2, 2, 2, 2},
			want:                Spread{Median: 1.75, Min: 1, Max: 5, N: 4},
			ratioOfMediansDiffs: false,
		},
		{
			name: "a round with a zero baseline has no ratio",
			ours: []float64{1, 2, 3}, base: []float64{1, 0, 3},
			want: Spread{Median: 1, Min: 1, Max: 1, N: 2},
		},
		{"no rounds", nil, nil, Spread{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := RatioSpread(tt.ours, tt.base)
			require.Equal(t, tt.want, got)
			if tt.ratioOfMediansDiffs {
				require.NotEqual(t, SpreadOf(tt.ours).Median/SpreadOf(tt.base).Median, got.Median)
			}
		})
	}
}

func TestSpreadPtrs(t *testing.T) {
	t.Parallel()
	med, lo, hi := Spread{Median: 0.98765, Min: 0.9, Max: 1.04321, N: 5}.Ptrs(3)
	require.Equal(t, []float64{0.988, 0.9, 1.043}, []float64{*med, *lo, *hi})
	med, lo, hi = Spread{}.Ptrs(3)
	require.Nil(t, med)
	require.Nil(t, lo)
	require.Nil(t, hi)

	details := map[string]float64{}
	Spread{Median: 1.5, Min: 1, Max: 2, N: 3}.Detail(details, "x", 1)
	Spread{}.Detail(details, "none", 1)
	require.Equal(t, map[string]float64{"x": 1.5, "x_min": 1, "x_max": 2}, details)
}

func TestEqualWorkRate(t *testing.T) {
	t.Parallel()
	// 100 jobs at 100/s (1 s) and 100 jobs at 50/s (2 s): 200 jobs in 3 s.
	require.InDelta(t, 200.0/3, EqualWorkRate(100, 50), 1e-9)
	require.InDelta(t, 70.0, EqualWorkRate(70, 70), 1e-9)
	require.Zero(t, EqualWorkRate(0, 50), "a run that measured nothing gives no rate")
}

func TestAlternate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name             string
		warmup, measured int
		mirrored         bool
		failAt           string // the side and round whose run fails, "" for none
		wantCalls        []string
		want             [][]float64
		wantErr          string
		wantLines        int
	}{
		{
			name: "warm-up first, then A B A B", warmup: 1, measured: 2,
			wantCalls: []string{"A1", "B1", "A2", "B2", "A3", "B3"},
			want:      [][]float64{{12, 13}, {22, 23}},
			wantLines: 3,
		},
		{
			name: "no warm-up", warmup: 0, measured: 3,
			wantCalls: []string{"A1", "B1", "A2", "B2", "A3", "B3"},
			want:      [][]float64{{11, 12, 13}, {21, 22, 23}},
			wantLines: 3,
		},
		{
			name: "the first error stops the rounds", warmup: 1, measured: 3, failAt: "B2",
			wantCalls: []string{"A1", "B1", "A2", "B2"},
			wantErr:   "B, round 2: broken",
			wantLines: 1,
		},
		{
			// Round r runs 2r-1 in order and 2r in reverse; a side's figure for the round is
			// the sum of its two runs' (the test's Mirror), so both runs must count.
			name: "mirrored: A B then B A, each side's runs combined", warmup: 1, measured: 2, mirrored: true,
			wantCalls: []string{"A1", "B1", "B2", "A2", "A3", "B3", "B4", "A4", "A5", "B5", "B6", "A6"},
			want:      [][]float64{{13 + 14, 15 + 16}, {23 + 24, 25 + 26}},
			wantLines: 3,
		},
		{
			name: "mirrored: an error in the reverse half stops the rounds", warmup: 0, measured: 2, mirrored: true, failAt: "A2",
			wantCalls: []string{"A1", "B1", "B2", "A2"},
			wantErr:   "A, round 1 (its mirrored run): broken",
		},
		{name: "no measured round", warmup: 1, measured: 0, wantErr: "want at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var progress bytes.Buffer
			e := &Env{Config: Config{Progress: &progress}}
			var calls []string
			side := func(name string, base float64) Side {
				return Side{Name: name, Run: func(_ context.Context, round int) (float64, error) {
					call := fmt.Sprintf("%s%d", name, round)
					calls = append(calls, call)
					if call == tt.failAt {
						return 0, errors.New("broken")
					}
					return base + float64(round), nil
				}}
			}
			c := RoundsConfig{Section: "test", Warmup: tt.warmup, Measured: tt.measured}
			if tt.mirrored {
				c.Mirror = func(a, b float64) float64 { return a + b }
			}
			got, err := e.Alternate(context.Background(), c, side("A", 10), side("B", 20))
			require.Equal(t, tt.wantCalls, calls)
			require.Equal(t, tt.wantLines, strings.Count(progress.String(), "bench: [test] "), "one progress line per round:\n%s", progress.String())
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			if tt.warmup > 0 {
				require.Contains(t, progress.String(), "bench: [test] warm-up in ")
			}
			require.Contains(t, progress.String(), fmt.Sprintf("round %d/%d", tt.measured, tt.measured))
		})
	}
}
