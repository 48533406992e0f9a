package bench

import (
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
