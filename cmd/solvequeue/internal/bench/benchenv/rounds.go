package benchenv

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rounds: a shared machine's load moves a rate by a fifth from one second to the next, so one
// measurement of each side says nothing about a change. Each side runs several times, the sides
// alternating (A B A B ...), after untimed warm-up rounds; a figure is the median of its rounds
// with the lowest and highest beside it.
//
// A ratio is the median of the per-round ratios (ours_i / baseline_i), not the ratio of the
// two medians: the two runs of a round are neighbours in time and share the load of that
// moment, so their ratio cancels it, and the median then drops the round where a burst of load
// fell on one side only. The ratio of medians would divide figures taken in different rounds,
// under different loads, and keep the load it was meant to cancel.
//
// A round can also be mirrored (RoundsConfig.Mirror): its sides run in order and then in
// reverse (A B B A), each run doing half of the round's work, and a side's figure for the round
// combines its two runs. Each side then runs once before and once after
// the other, so what drifts across the round (a load rising or falling, a cache warming) falls on
// both alike; and a burst of load that lands on one run weighs on half of its side's figure
// instead of all of it.

// Side is one of the runs a section compares, run once per round.
type Side struct {
	// Name names the side in progress lines.
	Name string
	// Run runs the side once and returns its figure. run counts from 1 over warm-up and
	// measured rounds alike (two per round when the rounds are mirrored: 2r-1 and 2r for round
	// r), so that it can name a fresh queue per run.
	Run func(ctx context.Context, run int) (float64, error)
}

// RoundsConfig says how many rounds a section runs.
type RoundsConfig struct {
	// Section names the section in progress lines.
	Section string
	// Warmup is how many rounds run first, untimed for the figures.
	Warmup int
	// Measured is how many rounds count. At least 1.
	Measured int
	// Mirror, when set, mirrors the rounds: each round's sides run in order and then in
	// reverse, two runs each (see Rounds above), and Mirror makes a side's figure for the round
	// of its two runs' figures. Each run should then do half of what an unmirrored run would.
	Mirror func(first, second float64) float64
}

// EqualWorkRate combines the rates (work per second) of two runs that did the same work into
// the rate of both together: the work of both over their summed time, the harmonic mean.
func EqualWorkRate(a, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return 2 / (1/a + 1/b)
}

// Alternate runs the sides in turn, round after round: c.Warmup rounds whose figures are
// dropped, then c.Measured rounds. It returns each side's figures in round order (one slice
// per side, in the order of sides) and writes a progress line per round, so that a long run is
// visibly alive. The first error stops it.
func (e *Env) Alternate(ctx context.Context, c RoundsConfig, sides ...Side) ([][]float64, error) {
	if c.Measured < 1 || c.Warmup < 0 || len(sides) == 0 {
		return nil, fmt.Errorf("rounds of %s: %d measured rounds, %d warm-up rounds, %d sides: want at least 1, 0 and 1",
			c.Section, c.Measured, c.Warmup, len(sides))
	}
	out := make([][]float64, len(sides))
	for i := range out {
		out[i] = make([]float64, 0, c.Measured)
	}
	for round := 1; round <= c.Warmup+c.Measured; round++ {
		began := time.Now()
		figures := make([]string, len(sides))
		vals, err := e.runRound(ctx, c, round, sides)
		if err != nil {
			return nil, err
		}
		for i, s := range sides {
			if round > c.Warmup {
				out[i] = append(out[i], vals[i])
			}
			figures[i] = fmt.Sprintf("%s %s", s.Name, formatFigure(vals[i]))
		}
		label := "warm-up"
		if round > c.Warmup {
			label = fmt.Sprintf("round %d/%d", round-c.Warmup, c.Measured)
		}
		e.Logf("bench: [%s] %s in %s: %s", c.Section, label, time.Since(began).Round(100*time.Millisecond), strings.Join(figures, ", "))
	}
	return out, nil
}

// runRound runs one round's sides and returns each side's figure for it: one run each in order,
// or, mirrored, runs 2r-1 in order and 2r in reverse, each side's two figures combined.
func (e *Env) runRound(ctx context.Context, c RoundsConfig, round int, sides []Side) ([]float64, error) {
	run := round
	if c.Mirror != nil {
		run = 2*round - 1
	}
	vals := make([]float64, len(sides))
	for i, s := range sides {
		v, err := s.Run(ctx, run)
		if err != nil {
			return nil, fmt.Errorf("%s, round %d: %w", s.Name, round, err)
		}
		vals[i] = v
	}
	if c.Mirror == nil {
		return vals, nil
	}
	for i := len(sides) - 1; i >= 0; i-- {
		v, err := sides[i].Run(ctx, 2*round)
		if err != nil {
			return nil, fmt.Errorf("%s, round %d (its mirrored run): %w", sides[i].Name, round, err)
		}
		vals[i] = c.Mirror(vals[i], v)
	}
	return vals, nil
}

// formatFigure prints a figure with three significant decimals at most.
func formatFigure(v float64) string {
	if v >= 100 {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

// Spread is a figure measured in rounds: the median of the rounds, the lowest and the highest.
type Spread struct {
	Median, Min, Max float64
	// N is how many rounds it was measured in; 0 for no figure.
	N int
}

// SpreadOf is the median, lowest and highest of vals; the median of an even count is the mean
// of the two middle values. No values give the zero Spread.
func SpreadOf(vals []float64) Spread {
	if len(vals) == 0 {
		return Spread{}
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// RatioSpread is the spread of the per-round ratios ours[i] / base[i] (see Rounds above for why
// not the ratio of the medians). A round whose baseline is 0 has no ratio and is left out.
func RatioSpread(ours, base []float64) Spread {
	ratios := make([]float64, 0, min(len(ours), len(base)))
	for i := range min(len(ours), len(base)) {
		if base[i] != 0 {
			ratios = append(ratios, ours[i]/base[i])
		}
	}
	return SpreadOf(ratios)
}

// Ptrs returns the median, lowest and highest, each rounded to digits places, for a Report's
// X, X_min and X_max; all nil when the spread has no figure.
func (s Spread) Ptrs(digits int) (median, lo, hi *float64) {
	if s.N == 0 {
		return nil, nil, nil
	}
	return Ptr(Round(s.Median, digits)), Ptr(Round(s.Min, digits)), Ptr(Round(s.Max, digits))
}

// Rounded is the median rounded to digits places, for a figure reported without its spread.
func (s Spread) Rounded(digits int) *float64 {
	med, _, _ := s.Ptrs(digits)
	return med
}

// Detail puts the spread in details as name, name_min and name_max, rounded to digits places.
func (s Spread) Detail(details map[string]float64, name string, digits int) {
	if s.N == 0 {
		return
	}
	details[name] = Round(s.Median, digits)
	details[name+"_min"] = Round(s.Min, digits)
	details[name+"_max"] = Round(s.Max, digits)
}

// RoundDetails puts each round's figure in details as name_roundN, rounded to digits places.
func RoundDetails(details map[string]float64, name string, vals []float64, digits int) {
	for i, v := range vals {
		details[fmt.Sprintf("%s_round%d", name, i+1)] = Round(v, digits)
	}
}
