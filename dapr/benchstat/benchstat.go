// Package benchstat summarises a figure measured over several runs of one
// configuration as median (min–max), and says whether the runs agree well
// enough to compare two configurations by: the one rule every report of the
// project's benchmarks uses (make bench, make k8s-bench).
package benchstat

import (
	"fmt"
	"math"
	"sort"
)

// StableSpread is the largest spread between runs, (max-min)/median, at
// which a figure is called stable enough to compare two configurations by.
const StableSpread = 0.10

// Spread is one figure over several runs of the same configuration.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// SpreadOf summarises the runs' values; the median of an even count is the
// mean of the middle two.
func SpreadOf(values []float64) Spread {
	if len(values) == 0 {
		return Spread{}
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	mid := len(v) / 2
	med := v[mid]
	if len(v)%2 == 0 {
		med = (v[mid-1] + v[mid]) / 2
	}
	return Spread{Median: med, Min: v[0], Max: v[len(v)-1], Runs: len(v)}
}

// Relative is (max-min)/median: 0.08 means the runs were within 8% of each
// other. A zero median with any spread is infinitely unstable.
func (s Spread) Relative() float64 {
	if s.Median == 0 {
		if s.Max == s.Min {
			return 0
		}
		return math.Inf(1)
	}
	return (s.Max - s.Min) / math.Abs(s.Median)
}

// Stable reports whether the figure was measured more than once and its runs
// agree within StableSpread.
func (s Spread) Stable() bool { return s.Runs > 1 && s.Relative() < StableSpread }

// String is "median (min–max) ✓" (✗ when the runs do not agree within
// StableSpread), each value with as many decimals as its size needs; one run
// is its value alone, none is "—".
func (s Spread) String() string {
	if s.Runs == 0 {
		return "—"
	}
	f := func(v float64) string {
		switch a := math.Abs(v); {
		case a >= 100:
			return fmt.Sprintf("%.0f", v)
		case a >= 10:
			return fmt.Sprintf("%.1f", v)
		default:
			return fmt.Sprintf("%.2f", v)
		}
	}
	if s.Runs == 1 {
		return f(s.Median)
	}
	mark := "✗"
	if s.Stable() {
		mark = "✓"
	}
	return fmt.Sprintf("%s (%s–%s) %s", f(s.Median), f(s.Min), f(s.Max), mark)
}

// Loads prints load averages as median (min–max), without a stability
// mark: the load is a condition of the runs, not a figure of the system.
func (s Spread) Loads() string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", s.Median, s.Min, s.Max)
}

// MedianIndex is the index of the median run when runs are ranked by key
// (the lower middle one of an even count), so a report can show one real run
// rather than a blend of several.
func MedianIndex(keys []float64) int {
	idx := make([]int, len(keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return keys[idx[a]] < keys[idx[b]] })
	if len(idx) == 0 {
		return -1
	}
	return idx[(len(idx)-1)/2]
}
