//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
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
// with this system's app ids, ports, resources and binaries.
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
		} `yaml:"common"`
		Apps []app `yaml:"apps"`
	}{Version: 1}
	file.Common.ResourcesPaths = []string{sys.ResourcesDir()}
	file.Common.ConfigFilePath = sys.ConfigPath()
	file.Common.AppProtocol = "http"
	file.Common.LogLevel = "warn"
	file.Common.AppLogDestination = "file"
	file.Common.DaprdLogDestination = "file"
	for _, name := range harness.Apps {
		a := sys.App(name)
		dir := filepath.Join(sys.Dir(), "run", name)
		require.NoError(t, os.MkdirAll(dir, 0o755))
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
			Env:          sys.AppEnv(name),
		})
	}
	data, err := yaml.Marshal(file)
	require.NoError(t, err)
	path := filepath.Join(sys.Dir(), "dapr.yaml")
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return path
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
