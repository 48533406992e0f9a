package bench

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

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
