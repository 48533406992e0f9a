package harness

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Counter is an HTTP proxy between an app and its own sidecar (the sidecar's
// --app-port points at it). It counts every request that reaches the app's
// address, by path, and can take the app away from the network and give it
// back (Down, Up) while the app process itself keeps running: a test sees
// exactly how many calls a sidecar's retries and circuit breaker let through
// to a dead app.
type Counter struct {
	t      testing.TB
	target string
	ln     net.Listener
	srv    *http.Server
	proxy  *httputil.ReverseProxy
	down   atomic.Bool

	mu    sync.Mutex
	paths map[string]int // requests received, by URL path
}

// NewCounter starts a Counter in front of the app at target (host:port) on a
// free loopback port.
func NewCounter(t testing.TB, target string) *Counter {
	t.Helper()
	ln, err := listenFree()
	if err != nil {
		t.Fatalf("harness: counter listen: %v", err)
	}
	to := &url.URL{Scheme: "http", Host: target}
	c := &Counter{t: t, target: target, ln: ln, paths: map[string]int{}}
	c.proxy = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(to)
			r.Out.Host = r.In.Host
		},
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     30 * time.Second,
		},
		// The app process is not there (StopApp): its sidecar must see what
		// it sees without a Counter, a call that got no answer, not the 502
		// a proxy would make up.
		ErrorHandler: func(http.ResponseWriter, *http.Request, error) { panic(http.ErrAbortHandler) },
	}
	c.srv = &http.Server{Handler: http.HandlerFunc(c.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = c.srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := c.srv.Shutdown(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Logf("harness: counter shutdown: %v", err)
		}
		_ = c.srv.Close()
	})
	return c
}

func (c *Counter) serve(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	if c.down.Load() {
		// Read, counted, and never answered: the connection is closed
		// without a response, as by an app that died with the request.
		panic(http.ErrAbortHandler)
	}
	c.proxy.ServeHTTP(w, r)
}

// Addr is the Counter's host:port.
func (c *Counter) Addr() string { return c.ln.Addr().String() }

// Port is the Counter's port.
func (c *Counter) Port() int { return c.ln.Addr().(*net.TCPAddr).Port }

// Count returns how many requests whose path starts with prefix reached the
// Counter, forwarded or not.
func (c *Counter) Count(prefix string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for path, k := range c.paths {
		if strings.HasPrefix(path, prefix) {
			n += k
		}
	}
	return n
}

// Counts returns the requests received so far by path, for failure messages.
func (c *Counter) Counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(c.paths))
	for p, n := range c.paths {
		out[p] = n
	}
	return out
}

// Down takes the app away: from now on every request is counted and its
// connection closed without an answer. Idle kept-alive connections are
// closed too, so no request can be lost on one of them (and transparently
// resent by the sidecar's HTTP client, which would count it twice).
func (c *Counter) Down() {
	c.down.Store(true)
	c.srv.SetKeepAlivesEnabled(false) // also closes the idle connections
}

// Up gives the app back: requests are forwarded again.
func (c *Counter) Up() {
	c.srv.SetKeepAlivesEnabled(true)
	c.down.Store(false)
}
