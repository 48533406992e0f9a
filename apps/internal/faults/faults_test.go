package faults

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestExitAt runs this test binary again as the "app" (helperProcess) and
// looks at how it ended.
func TestExitAt(t *testing.T) {
	once := filepath.Join(t.TempDir(), "fired")
	tests := []struct {
		name     string
		env      []string
		wantExit int
	}{
		{name: "unset: never exits", env: nil, wantExit: 0},
		{name: "another step: goes on", env: []string{EnvVar + "=other"}, wantExit: 0},
		{name: "its step: exits", env: []string{EnvVar + "=step-b"}, wantExit: ExitCode},
		{name: "once: the first exits", env: []string{EnvVar + "=step-b", OnceVar + "=" + once}, wantExit: ExitCode},
		{name: "once: the next goes on", env: []string{EnvVar + "=step-b", OnceVar + "=" + once}, wantExit: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
			cmd.Env = append(os.Environ(), append(tt.env, "FAULTS_HELPER=1")...)
			err := cmd.Run()
			code := 0
			if exit, ok := err.(*exec.ExitError); ok {
				code = exit.ExitCode()
			} else {
				require.NoError(t, err)
			}
			assert.Equal(t, tt.wantExit, code)
		})
	}
}

// TestHelperProcess is the "app" of TestExitAt: it goes through three steps.
func TestHelperProcess(t *testing.T) {
	if os.Getenv("FAULTS_HELPER") != "1" {
		return
	}
	step := ExitAt(os.Getenv, slog.New(slog.DiscardHandler))
	for _, s := range []string{"step-a", "step-b", "step-c"} {
		step(s)
	}
}
