// Command devrun is what `make run` runs: it starts the system with
// `dapr run -f` and watches it, because the Dapr CLI alone stays quiet when a
// sidecar or an app dies. It waits until every app answers /readyz, prints
// where to start, reports any process that exits, and on Ctrl-C stops the CLI
// and makes sure no daprd or app process is left behind.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/ordermesh/ordermesh/dapr/procs"
	"github.com/ordermesh/ordermesh/dapr/topology"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "devrun:", err)
		os.Exit(1)
	}
}

// runFile is the part of dapr.yaml devrun reads.
type runFile struct {
	Apps []struct {
		AppID        string `yaml:"appID"`
		AppPort      int    `yaml:"appPort"`
		DaprHTTPPort int    `yaml:"daprHTTPPort"`
	} `yaml:"apps"`
}

// instance is one entry of `dapr list -o json`.
type instance struct {
	AppID        string `json:"appId"`
	DaprdPid     int    `json:"daprdPid"`
	AppPid       int    `json:"appPid"`
	CliPid       int    `json:"cliPid"`
	AppLogPath   string `json:"appLogPath"`
	DaprdLogPath string `json:"daprdLogPath"`
}

func run() error {
	var (
		file     = flag.String("f", "dapr.yaml", "multi-app run file")
		daprCLI  = flag.String("dapr", ".dapr/bin/dapr", "dapr CLI to run")
		pubsub   = flag.String("pubsub", "redis", "orderpubsub broker: redis or rabbitmq")
		deadline = flag.Duration("ready-timeout", 2*time.Minute, "how long the apps may take to become ready")
		mtls     = flag.Bool("mtls", true, "mTLS between sidecars and access policies (Sentry started if needed)")
	)
	flag.Parse()

	raw, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	var rf runFile
	if err := yaml.Unmarshal(raw, &rf); err != nil {
		return fmt.Errorf("parse %s: %w", *file, err)
	}
	switch *pubsub {
	case "redis":
	case "rabbitmq":
		// The run file names the broker's component folder; swap it.
		raw = bytes.ReplaceAll(raw, []byte("./components/pubsub/redis"), []byte("./components/pubsub/rabbitmq"))
		// Exchanges, durable queues and bindings of every subscription
		// before any sidecar starts: an order placed before notifications
		// first starts waits for it in its queue (dapr/topology).
		dir := filepath.Dir(*file)
		start := time.Now()
		tctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		exchanges, queues, err := topology.Apply(tctx, "",
			filepath.Join(dir, "dapr", "resources", "subscriptions.yaml"),
			filepath.Join(dir, "components", "pubsub", "rabbitmq", "orderpubsub.yaml"),
			func(id string) string { return id })
		cancel()
		if err != nil {
			return fmt.Errorf("declare the RabbitMQ topology: %w", err)
		}
		fmt.Printf("devrun: RabbitMQ: %d exchanges and %d durable queues declared (%s)\n",
			len(exchanges), len(queues), time.Since(start).Round(time.Millisecond))
	default:
		return fmt.Errorf("unknown broker %q (want redis or rabbitmq)", *pubsub)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root, err := filepath.Abs(filepath.Dir(*file))
	if err != nil {
		return err
	}
	sec, raw, err := prepareSecurity(root, *mtls, raw)
	if err != nil {
		return err
	}
	defer sec.stop()

	// The CLI gets its own process group: Ctrl-C reaches devrun only, and
	// devrun decides how the CLI is stopped.
	cli := exec.Command(*daprCLI, "run", "-f", "-")
	cli.Stdin = bytes.NewReader(raw)
	cli.Stdout, cli.Stderr = os.Stdout, os.Stderr
	cli.Env = append(os.Environ(), sec.env...)
	cli.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	fmt.Printf("devrun: starting %d apps with %s (pub/sub: %s) ...\n", len(rf.Apps), *daprCLI, *pubsub)
	if err := cli.Start(); err != nil {
		return fmt.Errorf("start %s: %w", *daprCLI, err)
	}
	cliDone := make(chan error, 1)
	go func() { cliDone <- cli.Wait() }()

	w := &watcher{cli: *daprCLI, cliPid: cli.Process.Pid, seen: map[string]instance{}}
	defer w.stopAll(cli, cliDone)

	fmt.Printf("devrun: waiting up to %s for every app and sidecar to be ready ...\n", *deadline)
	if err := w.waitReady(ctx, rf, *deadline, cliDone); err != nil {
		return err
	}
	gateway := "http://localhost:8080"
	for _, a := range rf.Apps {
		if a.AppID == "gateway" {
			gateway = "http://localhost:" + strconv.Itoa(a.AppPort)
		}
	}
	// The README's name for the CLI: `make build` makes bin/dapr.
	listCLI := *daprCLI
	if _, err := os.Stat(filepath.Join(root, "bin", "dapr")); err == nil {
		listCLI = "bin/dapr"
	}
	fmt.Printf(`
devrun: all %d apps are ready.
  gateway:    %s   (status: curl -s %s/api/status -H "Authorization: Bearer $(bin/devtoken operator)")
  first call: curl -s -X POST %s/api/users -H 'Content-Type: application/json' -d '{"name":"Ada","email":"ada@example.com"}'
  see them:   %s list
  stop:       Ctrl-C

`, len(rf.Apps), gateway, gateway, gateway, listCLI)
	if console := os.Getenv("CONSOLE_URL"); console != "" {
		fmt.Printf("  console:    %s   (traces, metrics, topology; OBS=off skips it)\n\n", console)
	}

	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			fmt.Println("\ndevrun: stopping ...")
			return nil
		case err := <-cliDone:
			cliDone <- err
			return fmt.Errorf("the dapr CLI exited (%v)", err)
		case <-tick.C:
			if dead := w.deaths(); len(dead) > 0 {
				w.report(dead)
			}
		}
	}
}

type watcher struct {
	cli    string
	cliPid int
	seen   map[string]instance // app id -> last known processes
	dead   map[int]bool        // pids already reported
}

// list returns the instances the CLI started.
func (w *watcher) list() []instance {
	out, err := exec.Command(w.cli, "list", "-o", "json").Output()
	if err != nil {
		return nil
	}
	var all []instance
	if json.Unmarshal(out, &all) != nil {
		return nil
	}
	mine := all[:0]
	for _, in := range all {
		if in.CliPid == w.cliPid {
			mine = append(mine, in)
			w.seen[in.AppID] = in
		}
	}
	return mine
}

func (w *watcher) waitReady(ctx context.Context, rf runFile, timeout time.Duration, cliDone chan error) error {
	client := &http.Client{Timeout: 2 * time.Second}
	end := time.Now().Add(timeout)
	pending := map[string]string{}
	for _, a := range rf.Apps {
		pending[a.AppID] = "not started"
	}
	for {
		w.list()
		if dead := w.deaths(); len(dead) > 0 {
			w.report(dead)
			return errors.New("a process exited while starting; see its log above")
		}
		for _, a := range rf.Apps {
			if _, ok := pending[a.AppID]; !ok {
				continue
			}
			// The CLI records an app (and can stop it) only once it has
			// written the sidecar's metadata: wait for that too.
			if in, ok := w.seen[a.AppID]; !ok || in.DaprdPid == 0 || in.AppPid == 0 {
				pending[a.AppID] = "not yet registered by the dapr CLI"
				continue
			}
			if why := probe(client, a.AppPort); why != "" {
				pending[a.AppID] = why
				continue
			}
			delete(pending, a.AppID)
			fmt.Printf("devrun: %s is ready (app :%d, sidecar :%d)\n", a.AppID, a.AppPort, a.DaprHTTPPort)
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(end) {
			var b strings.Builder
			for id, why := range pending {
				fmt.Fprintf(&b, "\n  %s: %s", id, why)
			}
			return fmt.Errorf("not ready after %s:%s", timeout, b.String())
		}
		select {
		case <-ctx.Done():
			return errors.New("interrupted while starting")
		case err := <-cliDone:
			cliDone <- err
			return fmt.Errorf("the dapr CLI exited while starting (%v); its output is above", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func probe(client *http.Client, port int) string {
	res, err := client.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/readyz")
	if err != nil {
		return "not answering on :" + strconv.Itoa(port)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return "not ready: " + strings.TrimSpace(b.String())
	}
	return ""
}

type death struct {
	app, what, log string
	pid            int
}

// deaths returns the processes that were running and are gone.
func (w *watcher) deaths() []death {
	if w.dead == nil {
		w.dead = map[int]bool{}
	}
	var out []death
	for id, in := range w.seen {
		for _, p := range []struct {
			pid       int
			what, log string
		}{{in.DaprdPid, "sidecar (daprd)", in.DaprdLogPath}, {in.AppPid, "app", in.AppLogPath}} {
			if p.pid > 0 && !w.dead[p.pid] && !alive(p.pid) {
				w.dead[p.pid] = true
				out = append(out, death{app: id, what: p.what, log: p.log, pid: p.pid})
			}
		}
	}
	return out
}

func (w *watcher) report(dead []death) {
	for _, d := range dead {
		fmt.Fprintf(os.Stderr, "\ndevrun: the %s of %s (pid %d) exited. Last lines of %s:\n", d.what, d.app, d.pid, d.log)
		fmt.Fprintln(os.Stderr, tail(d.log, 15))
	}
}

// stopAll stops the CLI (which stops its sidecars and apps), then kills by
// pid whatever is still alive, so nothing outlives `make run`.
func (w *watcher) stopAll(cli *exec.Cmd, cliDone chan error) {
	w.list()
	// Whatever the CLI started, registered or not, is one of its descendants.
	started := procs.Descendants(cli.Process.Pid)
	_ = cli.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-cliDone:
		cliDone <- err
	case <-time.After(20 * time.Second):
		fmt.Fprintln(os.Stderr, "devrun: the dapr CLI did not stop in 20s; killing it")
		_ = syscall.Kill(-cli.Process.Pid, syscall.SIGKILL)
	}
	var left []int
	end := time.Now().Add(10 * time.Second)
	for {
		left = left[:0]
		for _, in := range w.seen {
			for _, pid := range []int{in.DaprdPid, in.AppPid} {
				if pid > 0 && alive(pid) {
					left = append(left, pid)
				}
			}
		}
		for _, pid := range started {
			if alive(pid) && !slices.Contains(left, pid) {
				left = append(left, pid)
			}
		}
		if len(left) == 0 || time.Now().After(end) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, pid := range left {
		fmt.Fprintf(os.Stderr, "devrun: pid %d still running; killing it\n", pid)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	fmt.Println("devrun: stopped; no daprd or app process is left")
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie is dead for our purposes.
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	return len(fields) == 0 || fields[0] != "Z"
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "  (no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  " + strings.Join(lines, "\n  ")
}
