package bench

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

func TestTCPLocalPorts(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   107        0 21001 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:1538 01 00000000:00000000 00:00000000 00000000     0        0 33333 1 0000000000000000 20 4 30 10 -1
`
	assert.Equal(t, map[string]int{"21001": 5432, "33333": 0xA1B2}, tcpLocalPorts([]byte(table)))
}

func TestPostgresRole(t *testing.T) {
	ours := map[int]bool{43210: true}
	tests := []struct {
		args  string
		name  string
		count bool
	}{
		{"postgres: 15/main: walwriter", "postgres (shared)", true},
		{"/usr/lib/postgresql/15/bin/postgres -D /var/lib/postgresql/15/main", "postgres (shared)", true},
		{"postgres: 15/main: ordermesh ordermesh 127.0.0.1(43210) idle", "postgres (our backends)", true},
		{"postgres: 15/main: ordermesh ordermesh 127.0.0.1(50000) idle", "postgres (our backends)", false},
	}
	for _, tt := range tests {
		t.Run(tt.args, func(t *testing.T) {
			name, count := postgresRole(tt.args, ours)
			assert.Equal(t, tt.name, name)
			assert.Equal(t, tt.count, count)
		})
	}
}
