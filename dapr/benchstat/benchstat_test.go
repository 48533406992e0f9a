package benchstat

import (
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSpreadOf(t *testing.T) {
	tests := []struct {
		name   string
		values []float64
		want   Spread
		rel    float64
		stable bool
	}{
		{"no runs", nil, Spread{}, 0, false},
		{"one run is never called stable", []float64{5}, Spread{Median: 5, Min: 5, Max: 5, Runs: 1}, 0, false},
		{"odd count takes the middle", []float64{10.5, 10, 10.2}, Spread{Median: 10.2, Min: 10, Max: 10.5, Runs: 3}, 0.5 / 10.2, true},
		{"even count averages the middle two", []float64{4, 1, 3, 2}, Spread{Median: 2.5, Min: 1, Max: 4, Runs: 4}, 3 / 2.5, false},
		{"spread at the limit is not stable", []float64{9.5, 10, 10.5}, Spread{Median: 10, Min: 9.5, Max: 10.5, Runs: 3}, 0.1, false},
		{"zero median with spread", []float64{-1, 0, 1}, Spread{Median: 0, Min: -1, Max: 1, Runs: 3}, math.Inf(1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := SpreadOf(tt.values)
			assert.Equal(t, tt.want, s)
			assert.InDelta(t, tt.rel, s.Relative(), 1e-9)
			assert.Equal(t, tt.stable, s.Stable())
		})
	}
}

func TestSpreadOfLeavesItsInputAlone(t *testing.T) {
	v := []float64{3, 1, 2}
	SpreadOf(v)
	assert.Equal(t, []float64{3, 1, 2}, v)
}

func TestMedianIndex(t *testing.T) {
	tests := []struct {
		name string
		keys []float64
		want int
	}{
		{"none", nil, -1},
		{"one", []float64{7}, 0},
		{"odd", []float64{30, 10, 20}, 2},
		{"even takes the lower middle", []float64{40, 10, 30, 20}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, MedianIndex(tt.keys))
		})
	}
}

func TestSpreadString(t *testing.T) {
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
			assert.Equal(t, tt.want, SpreadOf(tt.values).String())
		})
	}
}
