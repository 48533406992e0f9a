package server

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// ServeProfiles serves Go's runtime profiles (net/http/pprof, under
// /debug/pprof/) on addr for `make bench`, and returns the address it bound.
// An empty addr serves nothing: profiles are opt-in (PPROF_ADDR). They expose
// the program's internals, so addr must be a loopback IP address: anything
// else is refused, and the app does not start.
func ServeProfiles(addr string) (net.Addr, error) {
	if addr == "" {
		return nil, nil
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("PPROF_ADDR=%q: profiles are served on a loopback IP address only (127.0.0.1:port)", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("profiles: listen on %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// No write timeout: a CPU profile or trace answers after its seconds.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 120 * time.Second}
	go srv.Serve(ln) //nolint:errcheck // lives as long as the process
	return ln.Addr(), nil
}
