package resiliency

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestScaledChangesOnlyDurations(t *testing.T) {
	for _, factor := range []int{1, 10, 1000} {
		t.Run(fmt.Sprintf("factor %d", factor), func(t *testing.T) {
			orig := loadSpec(t)
			scaled, err := Scaled(orig, factor)
			require.NoError(t, err)

			before, after := leaves(t, orig), leaves(t, scaled)
			require.ElementsMatch(t, slices.Collect(maps.Keys(before)), slices.Collect(maps.Keys(after)), "fields added or removed")
			durations := 0
			for path, v := range before {
				if !durationPath.MatchString(path) {
					assert.Equal(t, v, after[path], path)
					continue
				}
				durations++
				want := daprDuration(t, v.(string)) / time.Duration(factor)
				assert.Equal(t, want, daprDuration(t, after[path].(string)), path)
			}
			// 5 timeouts, 3 retry durations, 2 breaker timeouts.
			assert.Equal(t, 10, durations)

			// The original is left as it was.
			assert.Equal(t, loadSpec(t), orig)
		})
	}
}

func TestScaledRefuses(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(res *v1alpha1.Resiliency)
		factor int
	}{
		{name: "factor zero", factor: 0},
		{name: "negative factor", factor: -10},
		{name: "a duration scaled to zero", factor: int(time.Hour)},
		{name: "a duration that is not one", factor: 10, edit: func(res *v1alpha1.Resiliency) { res.Spec.Policies.Timeouts["invoke"] = "soon" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := loadSpec(t)
			if tc.edit != nil {
				tc.edit(res)
			}
			_, err := Scaled(res, tc.factor)
			assert.Error(t, err)
		})
	}
}

func TestWriteScaled(t *testing.T) {
	const factor = 100
	dst := filepath.Join(t.TempDir(), "resiliency.yaml")
	require.NoError(t, WriteScaled(resiliencyFile, dst, factor))

	written, err := Load(dst)
	require.NoError(t, err, "the written file must load strictly")
	want, err := Scaled(loadSpec(t), factor)
	require.NoError(t, err)
	assert.Equal(t, want, written)
	assert.Equal(t, "300ms", written.Spec.Policies.CircuitBreakers["defaultBreaker"].Timeout)

	// And daprd takes every policy of it.
	newProvider(t, written)
}
