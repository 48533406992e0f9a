//go:build chaos

package chaos

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// Settings, from the environment.
var (
	// duration is the least time the load runs; the faults take about two
	// and a half minutes on RabbitMQ (restarts included), so a shorter
	// duration runs the faults back to back.
	duration = envDuration("CHAOS_DURATION", 3*time.Minute)
	freeze   = envDuration("CHAOS_FREEZE", 30*time.Second)
	cut      = envDuration("CHAOS_CUT", 10*time.Second)
	brokers  = strings.Split(envString("CHAOS_BROKERS", "redis,rabbitmq"), ",")
	workers  = 4
)

const (
	users, products = 20, 8
	stockEach       = 400
	// settleWithin bounds how long the system may take, once the load
	// stops, to deliver what is in flight and repair what was interrupted.
	settleWithin = 2 * time.Minute
	// idleWithin: every daprd and app under idleCPU within this long of
	// the last fault.
	idleWithin = 30 * time.Second
	idleCPU    = 0.05
)

// TestChaos runs the soak once per broker and writes the report.
func TestChaos(t *testing.T) {
	var reports []*report
	for _, broker := range brokers {
		t.Run(broker, func(t *testing.T) {
			r := soak(t, broker)
			reports = append(reports, r)
			t.Log("\n" + r.markdown())
		})
	}
	root := harness.RepoRoot(t)
	dir := filepath.Join(root, ".chaos")
	if err := os.MkdirAll(dir, 0o755); err == nil {
		var b strings.Builder
		for _, r := range reports {
			b.WriteString(r.markdown())
			b.WriteString("\n")
		}
		_ = os.WriteFile(filepath.Join(dir, "latest.md"), []byte(b.String()), 0o644)
		fmt.Printf("chaos: report in %s\n", filepath.Join(dir, "latest.md"))
	}
}

func soak(t *testing.T, broker string) *report {
	began := time.Now()
	logf := func(format string, args ...any) {
		fmt.Printf("chaos %s %6.1fs: %s\n", broker, time.Since(began).Seconds(), fmt.Sprintf(format, args...))
	}
	logf("starting a Redis, a PostgreSQL%s of the run's own", map[bool]string{true: " and a RabbitMQ node", false: ""}[broker == "rabbitmq"])
	infra, servers := harness.PrivateInfra(t, broker)
	logf("starting the system (daprd with mTLS, six apps)")
	sys := harness.Start(t, harness.Options{PubSub: broker, Infra: infra, ProxyPostgres: true})
	ctx := context.Background()
	ld := &load{c: newClient(t, sys.GatewayURL()), l: newLedger()}
	if err := ld.setup(ctx, users, products, stockEach); err != nil {
		t.Fatal(err)
	}
	if _, err := ld.probe(ctx, time.Minute); err != nil {
		t.Fatalf("the system does not work before any fault: %v", err)
	}
	original := map[*harness.Proc]bool{}
	for _, p := range sys.Procs() {
		original[p] = true
	}

	r := &report{Broker: broker, Began: began}
	stop := make(chan struct{})
	loadStart := time.Now()
	wg := ld.run(workers, stop)
	logf("load running: %d workers (orders, payments with retries, ships, reads)", workers)

	faults := schedule(sys, servers, broker, freeze, cut)
	gap := 3 * time.Second
	for i, f := range faults {
		time.Sleep(gap) // steady load between faults
		res := faultResult{Name: f.Name, Start: time.Now()}
		logf("fault %d/%d at %s: %s", i+1, len(faults), res.Start.UTC().Format("15:04:05.000"), f.Name)
		f.inject()
		time.Sleep(f.hold)
		f.undo()
		res.Restored = time.Now()
		took, err := ld.probe(ctx, 2*time.Minute)
		res.Recovered, res.Err = res.Restored.Add(took), err
		if err != nil {
			logf("  not recovered: %v", err)
		} else {
			logf("  recovered %.1fs after it was undone", took.Seconds())
		}
		r.Faults = append(r.Faults, res)
	}
	lastFault := time.Now()
	if rest := duration - time.Since(loadStart); rest > 0 {
		logf("steady load for the remaining %s", rest.Round(time.Second))
		time.Sleep(rest)
	}
	close(stop)
	wg.Wait()
	r.LoadTime = time.Since(loadStart)
	loadStopped := time.Now()
	logf("load stopped after %s; %d requests", r.LoadTime.Round(time.Second), len(ld.l.requests))

	// Every daprd and app back to idle.
	deadline := lastFault.Add(idleWithin)
	if loadStopped.After(lastFault) {
		deadline = loadStopped.Add(idleWithin)
	}
	r.Idle = waitIdle(sys, deadline)
	logf("idle check: %s", r.Idle.Figure)

	// Settle: what is in flight is delivered, what was interrupted repaired.
	settleStart := time.Now()
	var invs []invariant
	for {
		tr, err := readTruth(ctx, sys, servers["postgres"], ld)
		if err != nil {
			invs = []invariant{{Name: "read the stores", Figure: err.Error()}}
		} else {
			invs = check(ld.l, tr)
		}
		if allHold(invs) || time.Since(settleStart) > settleWithin {
			break
		}
		time.Sleep(2 * time.Second)
	}
	r.Settle = time.Since(settleStart)
	r.Invariants = append(invs, r.Idle, restarts(sys, original))
	r.Requests = ld.l.requests

	for _, inv := range r.Invariants {
		if !inv.Holds {
			details := inv.all
			if details == nil {
				details = inv.Detail
			}
			t.Errorf("invariant broken: %s: %s\n  %s", inv.Name, inv.Figure, strings.Join(details, "\n  "))
		}
	}
	if t.Failed() {
		keepLogs(t, sys, broker)
	}
	for _, f := range r.Faults {
		if f.Err != nil {
			t.Errorf("not recovered from %q: %v", f.Name, f.Err)
		}
	}
	return r
}

// waitIdle samples every daprd's and app's CPU over 3 s windows until all are
// under idleCPU or the deadline passes, and reports the last window.
func waitIdle(sys *harness.System, deadline time.Time) invariant {
	const window = 3 * time.Second
	for {
		var procs []*harness.Proc
		for _, name := range harness.Apps {
			procs = append(procs, sys.App(name).AppProc(), sys.App(name).SidecarProc())
		}
		before := make([]time.Duration, len(procs))
		for i, p := range procs {
			before[i], _ = p.CPUTime()
		}
		time.Sleep(window)
		var busy []string
		worst, worstName := 0.0, ""
		for i, p := range procs {
			after, err := p.CPUTime()
			if err != nil {
				busy = append(busy, p.Name+": "+err.Error())
				continue
			}
			share := (after - before[i]).Seconds() / window.Seconds()
			if share > worst {
				worst, worstName = share, p.Name
			}
			if share >= idleCPU {
				busy = append(busy, fmt.Sprintf("%s at %.0f%% of a core", p.Name, 100*share))
			}
		}
		now := time.Now()
		if len(busy) == 0 || now.After(deadline) {
			fig := fmt.Sprintf("%d processes; busiest %s at %.1f%% of a core (window ending %s before the deadline)",
				len(procs), worstName, 100*worst, deadline.Sub(now).Round(time.Second))
			return invariant{Name: fmt.Sprintf("every daprd and app under %.0f%% of a core within %s of the last fault", 100*idleCPU, idleWithin),
				Figure: fig, Holds: len(busy) == 0, Detail: busy}
		}
	}
}

// restarts reports processes that ended without being killed by the soak.
func restarts(sys *harness.System, original map[*harness.Proc]bool) invariant {
	var bad []string
	started := 0
	for _, p := range sys.Procs() {
		if !original[p] {
			started++
		}
		if p.Unexpected() {
			bad = append(bad, fmt.Sprintf("%s exited on its own: %v", p.Name, p.ExitErr()))
		}
	}
	return invariant{Name: "no process other than the killed ones restarted or exited",
		Figure: fmt.Sprintf("%d processes started again after a fault, %d exited on their own", started, len(bad)),
		Holds:  len(bad) == 0, Detail: bad}
}

func envDuration(name string, def time.Duration) time.Duration {
	if v := os.Getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
		panic(fmt.Sprintf("%s=%q is not a duration", name, v))
	}
	return def
}

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// keepLogs copies every process's log to .chaos/logs-<broker>/, for the
// failure to be read after the system's folder is gone.
func keepLogs(t *testing.T, sys *harness.System, broker string) {
	dir := filepath.Join(harness.RepoRoot(t), ".chaos", "logs-"+broker)
	_ = os.RemoveAll(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	for _, p := range sys.Procs() {
		_ = os.WriteFile(filepath.Join(dir, filepath.Base(p.LogPath)), []byte(p.Log()), 0o644)
	}
	fmt.Printf("chaos: logs of every process in %s\n", dir)
}
