package server_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/server"
)

func TestServeProfilesRefusesAnythingButLoopback(t *testing.T) {
	tests := []struct {
		name string
		addr string
	}{
		{"every interface", ":0"},
		{"unspecified IPv4", "0.0.0.0:0"},
		{"unspecified IPv6", "[::]:0"},
		{"a routable address", "10.1.2.3:6060"},
		{"a host name", "localhost:0"},
		{"no port", "127.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, err := server.ServeProfiles(tt.addr)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "loopback")
			assert.Nil(t, addr)
		})
	}
}

func TestServeProfilesOffByDefault(t *testing.T) {
	addr, err := server.ServeProfiles("")
	require.NoError(t, err)
	assert.Nil(t, addr)
}

func TestServeProfilesServesPprofOnLoopback(t *testing.T) {
	addr, err := server.ServeProfiles("127.0.0.1:0")
	require.NoError(t, err)
	require.NotNil(t, addr)

	res, err := http.Get("http://" + addr.String() + "/debug/pprof/goroutine?debug=1")
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, string(body), "goroutine profile:")
}
