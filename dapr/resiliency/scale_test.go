package resiliency

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestScaledChangesOnlyDurations scales every document and compares it with
// the original leaf by leaf. The fields are found by their position in the
// resource (durationPath), independently of how Scaled finds them; they are
// the fields the harness's ScaleResiliency scales for the end-to-end tests.
func TestScaledChangesOnlyDurations(t *testing.T) {
	// Durations per document: services 4 timeouts, 3 retry durations and 2
	// breaker timeouts; edge 4 timeouts and 1 retry duration.
	wantDurations := map[string]int{services: 9, edge: 5}
	for _, factor := range []int{1, 10, 1000} {
		t.Run(fmt.Sprintf("factor %d", factor), func(t *testing.T) {
			origs := loadSpecs(t)
			scaled, err := ScaledAll(origs, factor)
			require.NoError(t, err)
			require.Len(t, scaled, len(origs))

			for i, orig := range origs {
				before, after := leaves(t, orig), leaves(t, scaled[i])
				require.ElementsMatch(t, slices.Collect(maps.Keys(before)), slices.Collect(maps.Keys(after)), "%s: fields added or removed", orig.Name)
				durations := 0
				for path, v := range before {
					if !durationPath.MatchString(path) {
						assert.Equal(t, v, after[path], "%s: %s", orig.Name, path)
						continue
					}
					durations++
					want := daprDuration(t, v.(string)) / time.Duration(factor)
					assert.Equal(t, want, daprDuration(t, after[path].(string)), "%s: %s", orig.Name, path)
				}
				assert.Equal(t, wantDurations[orig.Name], durations, orig.Name)
			}

			// The originals are left as they were.
			assert.Equal(t, loadSpecs(t), origs)
		})
	}
}

func TestScaledRefuses(t *testing.T) {
	tests := []struct {
		name   string
		doc    string
		edit   func(res *v1alpha1.Resiliency)
		factor int
	}{
		{name: "factor zero", doc: services, factor: 0},
		{name: "negative factor", doc: edge, factor: -10},
		{name: "a duration scaled to zero", doc: services, factor: int(time.Hour)},
		{name: "an edge duration scaled to zero", doc: edge, factor: int(time.Hour)},
		{name: "a duration that is not one", doc: services, factor: 10, edit: func(res *v1alpha1.Resiliency) { res.Spec.Policies.Timeouts["invoke"] = "soon" }},
		{name: "an edge duration that is not one", doc: edge, factor: 10, edit: func(res *v1alpha1.Resiliency) { res.Spec.Policies.Timeouts["placeOrder"] = "soon" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs := loadSpecs(t)
			if tc.edit != nil {
				tc.edit(byName(t, docs, tc.doc))
			}
			_, err := Scaled(byName(t, docs, tc.doc), tc.factor)
			assert.Error(t, err)
			_, err = ScaledAll(docs, tc.factor)
			assert.Error(t, err)
		})
	}
}

func TestWriteScaled(t *testing.T) {
	const factor = 100
	src := filepath.Join(t.TempDir(), "both.yaml")
	require.NoError(t, os.WriteFile(src, bothFiles(t), 0o644))
	dst := filepath.Join(t.TempDir(), "resiliency.yaml")
	require.NoError(t, WriteScaled(src, dst, factor))

	written, err := Load(dst)
	require.NoError(t, err, "the written file must load strictly")
	want, err := ScaledAll(loadSpecs(t), factor)
	require.NoError(t, err)
	assert.Equal(t, want, written)
	assert.Equal(t, "300ms", byName(t, written, services).Spec.Policies.CircuitBreakers["defaultBreaker"].Timeout)
	assert.Equal(t, "600ms", byName(t, written, services).Spec.Policies.CircuitBreakers["usersBreaker"].Timeout)
	assert.Equal(t, "150ms", byName(t, written, edge).Spec.Policies.Timeouts["placeOrder"])
	assert.Equal(t, "2ms", byName(t, written, edge).Spec.Policies.Retries["invokeRetry"].Duration)

	// Every document on its own, separated by a `---` line.
	raw, err := os.ReadFile(dst)
	require.NoError(t, err)
	assert.Len(t, splitDocuments(raw), len(documents))
	assert.Equal(t, len(documents)-1, strings.Count(string(raw), "\n---\n"))

	// And daprd takes every policy of them.
	for _, res := range written {
		newProvider(t, res)
	}
}
