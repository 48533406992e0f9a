// Package scripts_test checks what dapr/scripts/preflight.sh and
// dapr/scripts/install.sh tell a newcomer before anything is built: a taken
// port names its owner, and a user who cannot install gets the one line to
// run. They need no server and install nothing.
package scripts_test

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// run runs a script of this folder and returns its combined output and exit code.
func run(t *testing.T, env []string, script string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("./"+script, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	require.NoError(t, err, "%s", out)
	return string(out), 0
}

func TestPreflightNamesTheOwnerOfATakenPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	runFile := filepath.Join(t.TempDir(), "dapr.yaml")
	require.NoError(t, os.WriteFile(runFile, fmt.Appendf(nil, "apps:\n  - appID: gateway\n    appPort: %d\n", port), 0o644))

	out, code := run(t, nil, "preflight.sh", "--ports", runFile)

	assert.Equal(t, 1, code, "%s", out)
	assert.Contains(t, out, fmt.Sprintf("port %d (in %s) is taken by pid %d: ", port, runFile, os.Getpid()))
	assert.Contains(t, out, "make run RUN_FILE=", "says how to use other ports")
	assert.Contains(t, out, "nothing was built")
}

func TestPreflightPassesWithFreePorts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := ln.Addr().(*net.TCPAddr).Port
	require.NoError(t, ln.Close())
	runFile := filepath.Join(t.TempDir(), "dapr.yaml")
	require.NoError(t, os.WriteFile(runFile, []byte("apps:\n  - appID: gateway\n    appPort: "+strconv.Itoa(port)+"\n"), 0o644))

	out, code := run(t, nil, "preflight.sh", "--ports", runFile)

	assert.Equal(t, 0, code, "%s", out)
	assert.Contains(t, out, "preflight: ok")
}

func TestInstallWhenItMayNot(t *testing.T) {
	// ORDERMESH_ASSUME_MISSING plays a machine without the servers,
	// ORDERMESH_NO_INSTALL a user without root or sudo.
	env := []string{"ORDERMESH_NO_INSTALL=1", "ORDERMESH_ASSUME_MISSING=redis rabbitmq"}
	tests := []struct {
		name   string
		script string
		args   []string
		want   []string
	}{
		{
			name:   "installer",
			script: "install.sh",
			args:   []string{"redis", "rabbitmq"},
			want:   []string{"Redis (port 6379", "RabbitMQ (port 5672", "sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server rabbitmq-server"},
		},
		{
			name:   "preflight",
			script: "preflight.sh",
			args:   []string{"--servers", "redis rabbitmq"},
			want:   []string{"sudo apt-get update && sudo apt-get install -y --no-install-recommends redis-server rabbitmq-server", "nothing was built"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, code := run(t, env, tt.script, tt.args...)
			assert.Equal(t, 1, code, "%s", out)
			for _, w := range tt.want {
				assert.Contains(t, out, w)
			}
			assert.NotContains(t, out, "installing")
		})
	}
}
