package k8stest

import (
	"fmt"
	"math"
	"sort"
	"testing"

	"github.com/stretchr/testify/assert"
)

// stableSpread is the largest spread between runs, (max-min)/median, at
// which a figure is called stable enough to compare by: the local bench's
// rule (apps/internal/bench.StableSpread).
const stableSpread = 0.10

// spread is one figure over several runs, summarised and printed the way the
// local bench does (apps/internal/bench: Spread, SpreadOf, sp). A copy, kept
// to the few lines both reports need: Go's internal rule keeps
// apps/internal/bench out of this package's reach.
type spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	Runs   int     `json:"runs"`
}

// spreadOf summarises the runs' values; the median of an even count is the
// mean of the middle two.
func spreadOf(values []float64) spread {
	if len(values) == 0 {
		return spread{}
	}
	v := append([]float64(nil), values...)
	sort.Float64s(v)
	mid := len(v) / 2
	med := v[mid]
	if len(v)%2 == 0 {
		med = (v[mid-1] + v[mid]) / 2
	}
	return spread{Median: med, Min: v[0], Max: v[len(v)-1], Runs: len(v)}
}

// stable reports whether the figure was measured more than once and its
// runs agree within stableSpread (a zero median with any spread is not).
func (s spread) stable() bool {
	if s.Runs < 2 {
		return false
	}
	if s.Median == 0 {
		return s.Max == s.Min
	}
	return (s.Max-s.Min)/math.Abs(s.Median) < stableSpread
}

// String is "median (min–max) ✓" (or ✗ when not stable); one run is its value.
func (s spread) String() string {
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
	if s.stable() {
		mark = "✓"
	}
	return fmt.Sprintf("%s (%s–%s) %s", f(s.Median), f(s.Min), f(s.Max), mark)
}

// loads prints load averages as median (min–max), without a stability
// mark: the load is a condition of the runs, not a figure of the system.
func (s spread) loads() string {
	return fmt.Sprintf("%.1f (%.1f–%.1f)", s.Median, s.Min, s.Max)
}

func TestSpread(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   string
	}{
		{"no runs", nil, "—"},
		{"one run: no mark", []float64{12.34}, "12.3"},
		{"within 10%: stable", []float64{13.5, 13.6, 14.1}, "13.6 (13.5–14.1) ✓"},
		{"more than 10% apart: not stable", []float64{10, 11.2, 10.5}, "10.5 (10.0–11.2) ✗"},
		{"even count: mean of the middle two", []float64{1, 2, 3, 4}, "2.50 (1.00–4.00) ✗"},
		{"zero median, no spread: stable", []float64{0, 0, 0}, "0.00 (0.00–0.00) ✓"},
		{"zero median with spread: not stable", []float64{0, 0, 0.5}, "0.00 (0.00–0.50) ✗"},
		{"hundreds without decimals", []float64{123.4, 124, 125}, "124 (123–125) ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, spreadOf(tt.values).String())
		})
	}
}
