//go:build bench

package bench

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/pprof/profile"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// ProfileRun is where the CPU of orders placed at a steady rate went, from
// CPU profiles of every app and sidecar taken together.
type ProfileRun struct {
	Rate    int            `json:"rate"`
	Seconds float64        `json:"seconds"`
	Orders  int            `json:"orders"` // sent while the profiles ran, failed ones included
	Errors  int            `json:"errors"`
	Dir     string         `json:"dir"`
	Summary ProfileSummary `json:"summary"`
	// Measured is /proc's CPU per order over the same window, for
	// comparison with what the profiles saw, in total and per process.
	Measured  Totals   `json:"measured_cpu_ms_per_order"`
	Processes []Usage  `json:"measured_processes"`
	Missing   []string `json:"missing,omitempty"`
}

// endpoint is where one process serves its CPU profile.
type endpoint struct {
	process, group, url string
}

// profilingOptions turns on every sidecar's profiling port (daprd
// --enable-profiling, on the sidecar's loopback API address) and every app's
// (PPROF_ADDR), on ports of their own.
func profilingOptions(t *testing.T) (harness.Options, []endpoint) {
	ports, err := harness.FreePorts(2 * len(harness.Apps))
	if err != nil {
		t.Fatalf("bench: profiling ports: %v", err)
	}
	opts := harness.Options{SidecarArgs: map[string][]string{}, Env: map[string]map[string]string{}}
	var eps []endpoint
	for i, app := range harness.Apps {
		sp, ap := strconv.Itoa(ports[2*i]), strconv.Itoa(ports[2*i+1])
		opts.SidecarArgs[app] = []string{"--enable-profiling", "--profile-port", sp}
		opts.Env[app] = map[string]string{"PPROF_ADDR": "127.0.0.1:" + ap}
		eps = append(eps,
			endpoint{app, GroupApp, "http://127.0.0.1:" + ap + "/debug/pprof/profile"},
			endpoint{app + "-daprd", GroupSidecar, "http://127.0.0.1:" + sp + "/debug/pprof/profile"})
	}
	return opts, eps
}

// profileOrders places orders at profileRate and, once the load is steady,
// takes a CPU profile of every app and sidecar over the same seconds.
func profileOrders(b *bench, m *meter, targets []vegeta.Target, eps []endpoint) *ProfileRun {
	t := b.t
	run := &ProfileRun{Rate: profileRate, Seconds: profileFor.Seconds(), Dir: filepath.Join(b.out, "profiles-"+b.stamp)}
	if err := os.MkdirAll(run.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	m.settle(15 * time.Second)
	procs := m.procs()
	const lead = 2 * time.Second // load steady before the profiles start
	attacker := vegeta.NewAttacker(vegeta.Timeout(10*time.Second), vegeta.KeepAlive(true), vegeta.Connections(1024), vegeta.MaxWorkers(2048))
	results := attacker.Attack(vegeta.NewStaticTargeter(targets...), vegeta.Rate{Freq: profileRate, Per: time.Second}, profileFor+2*lead, "profile")
	var from, to time.Time
	var before, after reading
	var profiles []Profiled
	done := make(chan struct{})
	go func() {
		defer close(done)
		time.Sleep(lead)
		var mu sync.Mutex
		var wg sync.WaitGroup
		from, before = time.Now(), m.read(procs)
		// /proc is read again when the profiles' seconds are over, not
		// when the last of them has arrived.
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(profileFor)
			to, after = time.Now(), m.read(procs)
		}()
		for _, ep := range eps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := fetchProfile(ep.url, profileFor, filepath.Join(run.Dir, ep.process+".pb.gz"))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					run.Missing = append(run.Missing, fmt.Sprintf("%s: %v", ep.process, err))
					return
				}
				profiles = append(profiles, Profiled{Process: ep.process, Group: ep.group, Profile: p})
			}()
		}
		wg.Wait()
	}()
	var all []*vegeta.Result
	for res := range results {
		all = append(all, res)
	}
	<-done
	// Orders sent while the profiles ran, and while /proc was measured:
	// the two windows differ by the time a reading takes.
	inWindow := func(from, to time.Time) (ok, failed int) {
		for _, res := range all {
			if res.Timestamp.Before(from) || res.Timestamp.After(to) {
				continue
			}
			if res.Code/100 == 2 {
				ok++
			} else {
				failed++
			}
		}
		return ok, failed
	}
	ok, failed := inWindow(from, from.Add(profileFor))
	run.Orders, run.Errors = ok+failed, failed
	ok, failed = inWindow(before.at, after.at)
	run.Summary = Summarize(profiles, run.Orders)
	run.Processes = usage(before, after, ok+failed)
	run.Measured = totals(run.Processes)
	t.Logf("profiles: %d processes, %d orders in %.0f s, %.2f ms CPU per order profiled; /proc measured %.2f (apps and sidecars) over %.1f s; saved in %s",
		len(profiles), run.Orders, profileFor.Seconds(), run.Summary.TotalMs, run.Measured.System, to.Sub(from).Seconds(), run.Dir)
	for _, miss := range run.Missing {
		t.Logf("profiles: missing %s", miss)
	}
	return run
}

// fetchProfile takes one CPU profile, keeps its bytes in file and parses it.
func fetchProfile(url string, d time.Duration, file string) (*profile.Profile, error) {
	client := &http.Client{Timeout: d + 30*time.Second}
	res, err := client.Get(fmt.Sprintf("%s?seconds=%d", url, int(d.Seconds())))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", res.Status, bytes.TrimSpace(data[:min(len(data), 200)]))
	}
	if err := os.WriteFile(file, data, 0o644); err != nil {
		return nil, err
	}
	return profile.ParseData(data)
}
