package harness

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCPUTimeCountsWork(t *testing.T) {
	p, err := startProc("busy", "app", "/bin/sh", []string{"-c", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 30"}, nil, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(p.Stop)

	var used time.Duration
	end := time.Now().Add(20 * time.Second)
	for time.Now().Before(end) {
		used, err = p.CPUTime()
		require.NoError(t, err)
		if used >= 100*time.Millisecond {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	assert.GreaterOrEqual(t, used, 100*time.Millisecond, "a busy loop shows up")
}
