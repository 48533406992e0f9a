package harness

import (
	"strconv"
	"time"
)

// ScaleResiliency returns an Options.EditResource hook that divides every
// duration of a Resiliency document's policies by factor and changes nothing
// else, so a test can live through a 60 s circuit-breaker timeout in 3 s
// with the file's own trip thresholds, probe counts and retry counts. The
// durations are the timeouts (spec.policies.timeouts.*), the retries'
// duration and maxInterval, and the circuit breakers' timeout and interval:
// the fields Scaled scales in dapr/resiliency, which checks its copy against
// Dapr's own types. This one works on the generic YAML, because the root
// module must not depend on the Dapr runtime; change both together.
//
// A scaled duration is never below 1ms (Dapr reads a zero breaker timeout as
// its 60 s default and a zero timeout as none; a zero stays zero), and is
// written back with a unit. As in Dapr, a bare number is milliseconds. Documents of other kinds,
// and values that are not durations, are left as they are.
func ScaleResiliency(factor int) func(doc map[string]any) {
	if factor < 1 {
		panic("harness: ScaleResiliency factor " + strconv.Itoa(factor) + ", want 1 or more")
	}
	scale := func(m map[string]any, key string) {
		d, ok := resiliencyDuration(m[key])
		if !ok || d == 0 {
			return
		}
		m[key] = max(d/time.Duration(factor), time.Millisecond).String()
	}
	return func(doc map[string]any) {
		if doc["kind"] != "Resiliency" {
			return
		}
		spec, _ := doc["spec"].(map[string]any)
		policies, _ := spec["policies"].(map[string]any)
		if timeouts, ok := policies["timeouts"].(map[string]any); ok {
			for name := range timeouts {
				scale(timeouts, name)
			}
		}
		for group, keys := range map[string][]string{
			"retries":         {"duration", "maxInterval"},
			"circuitBreakers": {"timeout", "interval"},
		} {
			named, _ := policies[group].(map[string]any)
			for _, p := range named {
				p, ok := p.(map[string]any)
				if !ok {
					continue
				}
				for _, key := range keys {
					scale(p, key)
				}
			}
		}
	}
}

// resiliencyDuration reads a duration of a resiliency policy as Dapr does: a
// string such as "1.5s", or a bare number of milliseconds.
func resiliencyDuration(v any) (time.Duration, bool) {
	switch v := v.(type) {
	case int:
		return time.Duration(v) * time.Millisecond, true
	case string:
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.Duration(ms) * time.Millisecond, true
		}
		d, err := time.ParseDuration(v)
		return d, err == nil
	}
	return 0, false
}
