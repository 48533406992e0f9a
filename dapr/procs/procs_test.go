package procs

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A shell that starts a sleep: the shell is a descendant of the test, the
// sleep a descendant of both, and the sleep has none.
func TestDescendants(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 30 & wait")
	require.NoError(t, cmd.Start())
	var below []int
	t.Cleanup(func() {
		for _, pid := range below {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})

	// The shell forks the sleep right after it starts: poll, with a deadline.
	for deadline := time.Now().Add(5 * time.Second); len(below) == 0 && time.Now().Before(deadline); {
		below = Descendants(cmd.Process.Pid)
		time.Sleep(10 * time.Millisecond)
	}
	require.Len(t, below, 1, "the sleep under the shell")
	mine := Descendants(os.Getpid())
	assert.Contains(t, mine, cmd.Process.Pid)
	assert.Contains(t, mine, below[0])
	assert.Empty(t, Descendants(below[0]))
}
