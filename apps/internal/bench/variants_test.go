//go:build bench

package bench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// variant is one sidecar setting to compare with the system as it ships.
type variant struct {
	note  string
	apply func(*harness.Options)
}

// variants are the settings BENCH_VARIANTS may name.
var variants = map[string]variant{
	"fresh": {"the system as it ships, started fresh like every other setting here (the baseline has the order ramp's data behind it): the fair reference for the others",
		func(*harness.Options) {}},
	"log-warn": {"every sidecar with `--log-level warn` (shipped: info)",
		everySidecar("--log-level", "warn")},
	"no-metrics": {"every sidecar with `--enable-metrics=false` (the gateway's /api/status reads these metrics: a measure of their cost, not a cut as is)",
		everySidecar("--enable-metrics=false")},
	"gogc-200": {"every sidecar with GOGC=200: half as many garbage collections, for more memory",
		func(o *harness.Options) { forEvery(&o.SidecarEnv, "GOGC=200") }},
	"max-concurrency-32": {"every sidecar with `--app-max-concurrency 32`",
		everySidecar("--app-max-concurrency", "32")},
	"no-app-health": {"every sidecar without its app health probe (`--enable-app-health-check=false`)",
		everySidecar("--enable-app-health-check=false")},
	"insecure": {"no Sentry, mTLS, access policies or API tokens: what the security costs, not a cut",
		func(o *harness.Options) { o.Insecure = true }},
}

func everySidecar(args ...string) func(*harness.Options) {
	return func(o *harness.Options) { forEvery(&o.SidecarArgs, args...) }
}

func forEvery(m *map[string][]string, values ...string) {
	if *m == nil {
		*m = map[string][]string{}
	}
	for _, app := range harness.Apps {
		(*m)[app] = append((*m)[app], values...)
	}
}

// compareVariants starts one system per variant next to the one already
// measured (the baseline), then runs the same order step on each in turn,
// `runs` rounds, so drift on the machine hits every configuration alike.
func compareVariants(b *bench, base *harness.System, baseMeter *meter, baseTargets []vegeta.Target) []Config {
	t := b.t
	type config struct {
		name, note string
		m          *meter
		targets    []vegeta.Target
		steps      []Step
	}
	configs := []*config{{name: "baseline", note: "the system as it ships (the one measured above)", m: baseMeter, targets: baseTargets}}
	if beforeRev != "" {
		start := time.Now()
		sys := harness.Start(t, harness.Options{AppBinaries: appsAt(t, beforeRev)})
		defer sys.Stop()
		configs = append(configs, &config{name: "apps at " + beforeRev,
			note: "the apps built from commit " + beforeRev + " (BENCH_BEFORE), with this checkout's sidecars and resources: before and after a code change, in the same rounds",
			m:    newMeter(sys), targets: orderTargets(t, sys)})
		t.Logf("bench: apps at %s started in %v", beforeRev, time.Since(start).Round(time.Second))
	}
	for _, name := range variantNames {
		v, ok := variants[name]
		if !ok {
			var known []string
			for k := range variants {
				known = append(known, k)
			}
			sort.Strings(known)
			t.Fatalf("bench: BENCH_VARIANTS: no variant %q (known: %s)", name, strings.Join(known, ", "))
		}
		var opts harness.Options
		v.apply(&opts)
		start := time.Now()
		sys := harness.Start(t, opts)
		defer sys.Stop()
		configs = append(configs, &config{name: name, note: v.note, m: newMeter(sys), targets: orderTargets(t, sys)})
		t.Logf("bench: variant %s started in %v", name, time.Since(start).Round(time.Second))
	}
	for _, c := range configs[1:] {
		attackAll(t, c.m, "warm-orders", c.targets, 50, 2*time.Second)
	}
	for round := range runs {
		if b.spent(fmt.Sprintf("sidecar settings, round %d of %d", round+1, runs)) {
			break
		}
		for _, c := range configs {
			// The systems share the cores: every one idle before any is measured.
			for _, other := range configs {
				if other != c {
					other.m.settle(15 * time.Second)
				}
			}
			s := attackAll(t, c.m, c.name, c.targets, variantRate, stepDuration)
			c.steps = append(c.steps, s)
			t.Logf("%s at %d/s, run %d: p99 %v errors %d; CPU per order: apps+sidecars %.2f ms (sidecars %.2f), servers %.2f ms; load average %.1f",
				c.name, variantRate, round+1, s.P99, s.Errors, s.CPU.System, s.CPU.Sidecar, s.CPU.Servers, s.LoadAvg)
		}
	}
	var out []Config
	for _, c := range configs {
		out = append(out, summarize(c.name, c.note, variantRate, c.steps))
	}
	return out
}

// appsAt builds the six apps as they were at git revision rev, from a copy
// of the tree at that revision (git archive), and returns the directory of
// the binaries.
func appsAt(t *testing.T, rev string) string {
	t.Helper()
	start := time.Now()
	dir := t.TempDir()
	src, bins := filepath.Join(dir, "src"), filepath.Join(dir, "bin")
	for _, d := range []string{src, bins} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	tarball := filepath.Join(dir, "src.tar")
	args := []string{"build", "-o", bins + "/"}
	for _, a := range harness.Apps {
		args = append(args, "./apps/"+a)
	}
	for _, step := range []struct {
		dir  string
		name string
		args []string
	}{
		{harness.RepoRoot(t), "git", []string{"archive", "--format=tar", "-o", tarball, rev}},
		{src, "tar", []string{"-xf", tarball}},
		{src, "nice", append([]string{"-n", "5", "go"}, args...)},
	} {
		cmd := exec.CommandContext(ctx, step.name, step.args...)
		cmd.Dir = step.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bench: BENCH_BEFORE=%s: %s %s: %v\n%s", rev, step.name, strings.Join(step.args, " "), err, out)
		}
	}
	t.Logf("bench: apps at %s built in %v", rev, time.Since(start).Round(time.Second))
	return bins
}
