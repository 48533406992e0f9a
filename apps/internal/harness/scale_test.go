package harness

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// durationPath matches the places of a Resiliency document that hold
// durations, by position, independently of how ScaleResiliency finds them.
var durationPath = regexp.MustCompile(`^spec\.policies\.(timeouts\.[^.]+|retries\.[^.]+\.(duration|maxInterval)|circuitBreakers\.[^.]+\.(timeout|interval))$`)

// resiliencyDocs decodes the repository's resiliency documents (the
// services' resiliency.yaml, then the gateway's resiliency-edge.yaml) as the
// harness does.
func resiliencyDocs(t *testing.T) []map[string]any {
	t.Helper()
	main, err := os.ReadFile(filepath.Join(RepoRoot(t), "resiliency.yaml"))
	require.NoError(t, err)
	edge, err := os.ReadFile(filepath.Join(RepoRoot(t), "dapr", "resources", "resiliency-edge.yaml"))
	require.NoError(t, err)
	raw := append(append(main, "---\n"...), edge...)
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// flatten maps every leaf of v to its dotted path.
func flatten(path string, v any, out map[string]any) {
	join := func(k string) string {
		if path == "" {
			return k
		}
		return path + "." + k
	}
	switch v := v.(type) {
	case map[string]any:
		for k, sub := range v {
			flatten(join(k), sub, out)
		}
	case []any:
		for i, sub := range v {
			flatten(join(strconv.Itoa(i)), sub, out)
		}
	default:
		out[path] = v
	}
}

func TestScaleResiliencyChangesOnlyDurations(t *testing.T) {
	for _, factor := range []int{1, 10, 20} {
		t.Run(strconv.Itoa(factor), func(t *testing.T) {
			origs, scaled := resiliencyDocs(t), resiliencyDocs(t)
			require.Len(t, origs, 2, "resiliency.yaml: ordermesh and ordermesh-edge")
			edit := ScaleResiliency(factor)
			for _, doc := range scaled {
				edit(doc)
			}

			durations := 0
			for i, orig := range origs {
				before, after := map[string]any{}, map[string]any{}
				flatten("", orig, before)
				flatten("", scaled[i], after)
				require.Len(t, after, len(before), "fields added or removed")
				for path, v := range before {
					require.Contains(t, after, path)
					if !durationPath.MatchString(path) {
						assert.Equal(t, v, after[path], "%s: %s", orig["metadata"], path)
						continue
					}
					durations++
					was, err := time.ParseDuration(v.(string))
					require.NoError(t, err, path)
					now, err := time.ParseDuration(after[path].(string))
					require.NoError(t, err, path)
					assert.Equal(t, was, now*time.Duration(factor), "%s: %s: %s became %s", orig["metadata"], path, v, after[path])
				}
			}
			// ordermesh: 4 timeouts, 3 retry durations, 2 breaker timeouts;
			// ordermesh-edge: 4 timeouts, 1 retry duration.
			assert.Equal(t, 14, durations)
		})
	}
}

func TestScaleResiliencyByTwenty(t *testing.T) {
	docs := resiliencyDocs(t)
	edit := ScaleResiliency(20)
	for _, doc := range docs {
		edit(doc)
	}
	get := func(doc map[string]any, path ...string) any {
		var v any = doc
		for _, k := range path {
			v = v.(map[string]any)[k]
		}
		return v
	}
	services, edge := docs[0], docs[1]
	assert.Equal(t, "3s", get(services, "spec", "policies", "circuitBreakers", "usersBreaker", "timeout"))
	assert.Equal(t, "1.5s", get(services, "spec", "policies", "circuitBreakers", "defaultBreaker", "timeout"))
	assert.Equal(t, "250ms", get(services, "spec", "policies", "timeouts", "invoke"))
	assert.Equal(t, "10ms", get(services, "spec", "policies", "retries", "invokeRetry", "duration"))
	assert.Equal(t, "750ms", get(edge, "spec", "policies", "timeouts", "placeOrder"))
	// Counts are counts.
	assert.Equal(t, 3, get(services, "spec", "policies", "circuitBreakers", "usersBreaker", "maxRequests"))
	assert.Equal(t, "consecutiveFailures >= 3", get(services, "spec", "policies", "circuitBreakers", "usersBreaker", "trip"))
	assert.Equal(t, 1, get(edge, "spec", "policies", "retries", "invokeRetry", "maxRetries"))
}

func TestScaleResiliencyEdges(t *testing.T) {
	doc := func(kind string) map[string]any {
		return map[string]any{
			"kind": kind,
			"spec": map[string]any{
				"policies": map[string]any{
					"timeouts": map[string]any{"tiny": "10ms", "bare": 3000, "bareString": "500", "zero": "0s", "bad": "soon"},
					"retries":  map[string]any{"r": map[string]any{"duration": "2s", "maxInterval": "1m", "maxRetries": 4}},
					"circuitBreakers": map[string]any{
						"cb": map[string]any{"timeout": "90s", "interval": "1h", "maxRequests": 1, "trip": "consecutiveFailures > 2"},
					},
				},
				"timeout": "10s", // not a policy
			},
		}
	}

	got := doc("Resiliency")
	ScaleResiliency(100)(got)
	assert.Equal(t, map[string]any{
		"kind": "Resiliency",
		"spec": map[string]any{
			"policies": map[string]any{
				// 100µs is floored at 1ms; bare numbers are milliseconds;
				// a zero and a non-duration are left alone.
				"timeouts": map[string]any{"tiny": "1ms", "bare": "30ms", "bareString": "5ms", "zero": "0s", "bad": "soon"},
				"retries":  map[string]any{"r": map[string]any{"duration": "20ms", "maxInterval": "600ms", "maxRetries": 4}},
				"circuitBreakers": map[string]any{
					"cb": map[string]any{"timeout": "900ms", "interval": "36s", "maxRequests": 1, "trip": "consecutiveFailures > 2"},
				},
			},
			"timeout": "10s",
		},
	}, got)

	other := doc("Component")
	ScaleResiliency(100)(other)
	assert.Equal(t, doc("Component"), other, "only Resiliency documents change")

	assert.Panics(t, func() { ScaleResiliency(0) })
}
