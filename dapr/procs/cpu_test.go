package procs

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseStatCPU(t *testing.T) {
	tests := []struct {
		name    string
		stat    string
		want    time.Duration
		wantErr bool
	}{
		{"plain name", "1234 (daprd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 12 0 100 0 0",
			3250 * time.Millisecond, false},
		{"name with spaces and parentheses", "99 (a (b) c) R 1 99 99 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 0 0",
			100 * time.Millisecond, false},
		{"no name", "99 R 1", 0, true},
		{"too short", "99 (x) R 1 2 3", 0, true},
		{"not a number", "99 (x) R 1 99 99 0 -1 0 0 0 0 0 abc 3 0 0 20", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatCPU([]byte(tt.stat))
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestCPUTimeOfThisProcessGrowsWithWork(t *testing.T) {
	before, err := CPUTime(os.Getpid())
	require.NoError(t, err)
	// Burn CPU until the kernel's 10 ms tick shows it, with a deadline.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1_000_000 {
			x += i
		}
		if now, err := CPUTime(os.Getpid()); err == nil && now > before {
			return
		}
	}
	t.Fatalf("CPU time stayed at %v after 5 s of work (%d)", before, x)
}

func TestCPUTimeOfNoProcess(t *testing.T) {
	_, err := CPUTime(-1)
	require.Error(t, err)
}

func TestLoadAverage(t *testing.T) {
	data, err := os.ReadFile("/proc/loadavg")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, LoadAverage(), 0.0)
	assert.Regexp(t, `^\d+\.\d\d `, string(data), "the format LoadAverage reads")
}
