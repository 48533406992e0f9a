//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/dapr/procs"
)

// TestDaprRunFile starts the system the way `make run` does: devrun driving
// the pinned dapr CLI with a multi-app run file. It checks that every app
// becomes ready and serves, that `dapr list` shows the six apps, and that
// Ctrl-C leaves no daprd or app process behind.
func TestDaprRunFile(t *testing.T) {
	// The CLI sends every sidecar to Sentry on localhost:50001 when mTLS is
	// on, which a running `make run` may hold: this test of the CLI path
	// runs without mTLS (security has its own tests).
	sys := harness.Prepare(t, harness.Options{Insecure: true})
	root := harness.RepoRoot(t)
	daprd := harness.DaprdPath(t)
	runtimePath := filepath.Dir(filepath.Dir(filepath.Dir(daprd)))
	require.Equal(t, filepath.Join(runtimePath, ".dapr", "bin", "daprd"), daprd, "the CLI finds daprd at <runtime path>/.dapr/bin/daprd")
	cli := os.Getenv("ORDERMESH_DAPR")
	if cli == "" {
		cli = filepath.Join(root, ".dapr", "bin", "dapr")
	}
	require.FileExists(t, cli, "run `make toolchain` to build the pinned dapr CLI")

	runFile := writeRunFile(t, sys)
	devrun := filepath.Join(t.TempDir(), "devrun")
	build := exec.Command("go", "build", "-o", devrun, "./dapr/devrun")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)

	var output syncBuffer
	cmd := exec.Command(devrun, "-f", runFile, "-dapr", cli, "-ready-timeout", "90s", "-mtls=false")
	cmd.Env = append(os.Environ(), "DAPR_RUNTIME_PATH="+runtimePath)
	cmd.Stdout, cmd.Stderr = &output, &output
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if t.Failed() {
			t.Logf("devrun output:\n%s", output.String())
		}
	})

	deadline := time.After(120 * time.Second)
	for !strings.Contains(output.String(), "all 6 apps are ready") {
		select {
		case err := <-exited:
			t.Fatalf("devrun exited before the apps were ready: %v", err)
		case <-deadline:
			t.Fatal("the apps were not ready within 120s")
		case <-time.After(200 * time.Millisecond):
		}
	}

	// `dapr list` shows the six apps of this run.
	listed := daprList(t, cli)
	pids := map[int]string{}
	for _, name := range harness.Apps {
		in, ok := listed[sys.App(name).ID]
		require.True(t, ok, "dapr list shows %s", sys.App(name).ID)
		pids[in.DaprdPid] = name + " sidecar"
		pids[in.AppPid] = name + " app"
	}

	res := do(t, http.MethodPost, sys.GatewayURL()+"/api/users", map[string]any{"name": "Via the CLI", "email": uniqueEmail()})
	assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)

	require.NoError(t, cmd.Process.Signal(syscall.SIGINT))
	select {
	case err := <-exited:
		assert.NoError(t, err, "devrun exits cleanly on Ctrl-C")
	case <-time.After(60 * time.Second):
		t.Fatal("devrun did not stop within 60s of Ctrl-C")
	}
	assert.Contains(t, output.String(), "no daprd or app process is left")
	for pid, what := range pids {
		assert.False(t, harness.Alive(pid), "%s (pid %d) is still running", what, pid)
	}
	requireNoSchedulerDials(t, sys)
}

// TestBinDaprRunFile runs the system the way the README tells a user to
// drive it by hand: `make build`, then `bin/dapr run -f <dir>` typed at the
// repository root, with no DAPR_RUNTIME_PATH and no Sentry started by hand.
// bin/dapr must find the pinned daprd, start Sentry because the
// Configuration turns mTLS on (and say so), and Ctrl-C must leave no process:
// no app, no sidecar, and no Sentry it started.
func TestBinDaprRunFile(t *testing.T) {
	root := harness.RepoRoot(t)
	// The CLI sends sidecars to Sentry on localhost:50001 and nowhere else.
	// Free, bin/dapr starts Sentry; held by this repository's Sentry (a
	// running `make run`), bin/dapr uses it and leaves it running.
	sentryPid := 0
	if pid := listenerPid(t, 50001); pid != 0 {
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		ours, err := filepath.EvalSymlinks(filepath.Join(root, ".dapr", "bin", "sentry"))
		require.NoError(t, err)
		require.Equal(t, ours, exe,
			"port 50001 is held by pid %d (%s), not by this repository's Sentry: stop it to run this test", pid, exe)
		sentryPid = pid
	}
	sys := harness.Prepare(t, harness.Options{})
	runFile := writeRunFile(t, sys)

	build := exec.Command("make", "--no-print-directory", "build")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	target, err := filepath.EvalSymlinks(filepath.Join(root, "bin", "dapr"))
	require.NoError(t, err, "make build makes bin/dapr")
	require.Equal(t, filepath.Join(root, "dapr", "scripts", "dapr.sh"), target, "bin/dapr is the wrapper around the pinned CLI")

	var output syncBuffer
	// `-f` names the directory of the run file, as `-f .` does at the root.
	cmd := exec.Command("bin/dapr", "run", "-f", filepath.Dir(runFile))
	cmd.Dir = root
	// As typed in a fresh shell: bin/dapr finds the runtime, the trust
	// anchors and an app token by itself.
	cmd.Env = withoutEnv(os.Environ(), "DAPR_RUNTIME_PATH", "DAPR_TRUST_ANCHORS", "DAPR_API_TOKEN", "APP_API_TOKEN")
	cmd.Stdout, cmd.Stderr = &output, &output
	// Its own process group, as a shell gives a command it runs: Ctrl-C is
	// SIGINT to the group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A shell at a terminal starts bin/dapr with SIGINT at its default. This
	// test binary may have been started with SIGINT ignored (make e2e run in
	// the background), which a child inherits and bash cannot trap: while
	// SIGINT is caught here, a child starts with the default instead.
	sigint := make(chan os.Signal, 1)
	signal.Notify(sigint, syscall.SIGINT)
	require.NoError(t, cmd.Start())
	signal.Stop(sigint)
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	startsSentry := sentryPid == 0
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		if startsSentry {
			// Sentry runs in a session of its own: a failed test stops it here.
			_ = exec.Command(filepath.Join(root, "dapr", "scripts", "sentry.sh"), "stop").Run()
		}
		if t.Failed() {
			t.Logf("bin/dapr output:\n%s", output.String())
		}
	})

	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.After(120 * time.Second)
	for _, name := range harness.Apps {
		for !answersReady(client, sys.App(name).URL()) {
			select {
			case err := <-exited:
				t.Fatalf("bin/dapr exited before %s was ready: %v", name, err)
			case <-deadline:
				t.Fatalf("%s was not ready within 120s", name)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	if sentryPid == 0 {
		assert.Contains(t, output.String(), "no Sentry runs: starting one", "bin/dapr says it starts Sentry")
		sentryPid = listenerPid(t, 50001)
		require.NotZero(t, sentryPid, "Sentry listens on 50001")
	} else {
		assert.Contains(t, output.String(), "using the Sentry already on localhost:50001")
	}

	// The gateway reaches users through both sidecars: mTLS and the access
	// policies are in force.
	res := do(t, http.MethodPost, sys.GatewayURL()+"/api/users", map[string]any{"name": "Via bin/dapr", "email": uniqueEmail()})
	assert.Equal(t, http.StatusCreated, res.Status, "%s", res.Body)

	pids := map[int]string{}
	for _, pid := range procs.Descendants(cmd.Process.Pid) {
		pids[pid] = "a process bin/dapr started"
	}
	listed := daprList(t, filepath.Join(root, "bin", "dapr"))
	for _, name := range harness.Apps {
		in, ok := listed[sys.App(name).ID]
		require.True(t, ok, "bin/dapr list shows %s", sys.App(name).ID)
		pids[in.DaprdPid] = name + " sidecar"
		pids[in.AppPid] = name + " app"
	}

	require.NoError(t, syscall.Kill(-cmd.Process.Pid, syscall.SIGINT), "Ctrl-C")
	select {
	case <-exited:
	case <-time.After(60 * time.Second):
		t.Fatal("bin/dapr did not stop within 60s of Ctrl-C")
	}
	for pid, what := range pids {
		assert.False(t, harness.Alive(pid), "%s (pid %d) is still running", what, pid)
	}
	if strings.Contains(output.String(), "starting one for this run") {
		assert.False(t, harness.Alive(sentryPid), "the Sentry bin/dapr started (pid %d) is still running", sentryPid)
		assert.Zero(t, listenerPid(t, 50001), "nothing listens on 50001 any more")
	} else {
		assert.True(t, harness.Alive(sentryPid), "the Sentry that was running before is left alone")
	}
	requireNoSchedulerDials(t, sys)
}

func answersReady(client *http.Client, base string) bool {
	res, err := client.Get(base + "/readyz")
	if err != nil {
		return false
	}
	res.Body.Close()
	return res.StatusCode == http.StatusOK
}

// listenerPid is the pid of the process listening on a loopback TCP port, 0 if none.
func listenerPid(t *testing.T, port int) int {
	t.Helper()
	out, err := exec.Command("ss", "-ltnpH", fmt.Sprintf("sport = :%d", port)).Output()
	require.NoError(t, err, "ss (iproute2) lists listening sockets")
	_, after, found := strings.Cut(string(out), "pid=")
	if !found {
		return 0
	}
	pid, err := strconv.Atoi(strings.SplitN(after, ",", 2)[0])
	require.NoError(t, err, "%s", out)
	return pid
}

func withoutEnv(env []string, names ...string) []string {
	var out []string
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if !slices.Contains(names, name) {
			out = append(out, kv)
		}
	}
	return out
}

type listedApp struct {
	AppID    string `json:"appId"`
	DaprdPid int    `json:"daprdPid"`
	AppPid   int    `json:"appPid"`
}

func daprList(t *testing.T, cli string) map[string]listedApp {
	t.Helper()
	out, err := exec.Command(cli, "list", "-o", "json").Output()
	require.NoError(t, err)
	var all []listedApp
	require.NoError(t, json.Unmarshal(out, &all), "%s", out)
	byID := map[string]listedApp{}
	for _, a := range all {
		byID[a.AppID] = a
	}
	return byID
}

// writeRunFile writes a multi-app run file like the repository's dapr.yaml,
// with this system's app ids, ports, resources and binaries. As in dapr.yaml,
// the API tokens are not in it: the sidecars and the apps take them from the
// environment of the CLI.
func writeRunFile(t *testing.T, sys *harness.System) string {
	t.Helper()
	type app struct {
		AppID        string            `yaml:"appID"`
		AppDirPath   string            `yaml:"appDirPath"`
		Command      []string          `yaml:"command"`
		AppPort      int               `yaml:"appPort"`
		DaprHTTPPort int               `yaml:"daprHTTPPort"`
		DaprGRPCPort int               `yaml:"daprGRPCPort"`
		InternalPort int               `yaml:"daprInternalGRPCPort"`
		MetricsPort  int               `yaml:"metricsPort"`
		Env          map[string]string `yaml:"env"`
	}
	file := struct {
		Version int `yaml:"version"`
		Common  struct {
			ResourcesPaths       []string `yaml:"resourcesPaths"`
			ConfigFilePath       string   `yaml:"configFilePath"`
			AppProtocol          string   `yaml:"appProtocol"`
			LogLevel             string   `yaml:"logLevel"`
			AppLogDestination    string   `yaml:"appLogDestination"`
			DaprdLogDestination  string   `yaml:"daprdLogDestination"`
			PlacementHostAddress string   `yaml:"placementHostAddress"`
			SchedulerHostAddress string   `yaml:"schedulerHostAddress"`
		} `yaml:"common"`
		Apps []app `yaml:"apps"`
	}{Version: 1}
	file.Common.ResourcesPaths = []string{sys.ResourcesDir()}
	file.Common.ConfigFilePath = sys.ConfigPath()
	file.Common.AppProtocol = "http"
	file.Common.LogLevel = "warn"
	file.Common.AppLogDestination = "file"
	file.Common.DaprdLogDestination = "file"
	// Set but empty, as in dapr.yaml: no scheduler to dial.
	file.Common.SchedulerHostAddress = ""
	for _, name := range harness.Apps {
		a := sys.App(name)
		dir := filepath.Join(sys.Dir(), "run", name)
		require.NoError(t, os.MkdirAll(dir, 0o755))
		env := sys.AppEnv(name)
		delete(env, "DAPR_API_TOKEN")
		delete(env, "APP_API_TOKEN")
		file.Apps = append(file.Apps, app{
			AppID:        a.ID,
			AppDirPath:   dir,
			Command:      []string{filepath.Join(sys.BinDir(), name)},
			AppPort:      a.AppPort,
			DaprHTTPPort: a.HTTPPort,
			DaprGRPCPort: a.GRPCPort,
			// The harness's Configuration resolves app ids to these ports.
			InternalPort: a.InternalGRPCPort,
			MetricsPort:  a.MetricsPort,
			Env:          env,
		})
	}
	data, err := yaml.Marshal(file)
	require.NoError(t, err)
	path := filepath.Join(sys.Dir(), "dapr.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
}

// requireNoSchedulerDials checks the sidecars' logs of a run file's apps: with
// schedulerHostAddress "" each sidecar must start with its scheduler client
// off and never try to reach one (the pinned CLI carries
// dapr/toolchain/patches/cli-run-file-scheduler.patch for that; without it,
// every sidecar logs "Failed to connect to scheduler host" once a second).
func requireNoSchedulerDials(t *testing.T, sys *harness.System) {
	t.Helper()
	logs, err := filepath.Glob(filepath.Join(sys.Dir(), "run", "*", ".dapr", "logs", "*daprd*.log"))
	require.NoError(t, err)
	require.Len(t, logs, len(harness.Apps), "one daprd log per app")
	for _, log := range logs {
		data, err := os.ReadFile(log)
		require.NoError(t, err)
		assert.Contains(t, string(data), "No scheduler host addresses provided. Scheduler disabled", "%s", log)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "Scheduler disabled") {
				continue
			}
			assert.NotContains(t, strings.ToLower(line), "scheduler", "%s", log)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader at once.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
