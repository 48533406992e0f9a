package harness

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// Sentry is the system's own certificate authority: it generates issuer
// credentials in the system's folder and signs each sidecar's mTLS
// certificate for its app id.
type Sentry struct {
	Port, HealthPort, MetricsPort int
	CredsDir                      string
	proc                          *Proc
}

// Address is where sidecars ask Sentry for certificates.
func (se *Sentry) Address() string { return "127.0.0.1:" + strconv.Itoa(se.Port) }

// TrustAnchors is the PEM of the root certificate every sidecar trusts.
func (se *Sentry) TrustAnchors(t testing.TB) string {
	t.Helper()
	pem, err := os.ReadFile(filepath.Join(se.CredsDir, "ca.crt"))
	if err != nil {
		t.Fatalf("harness: sentry trust anchors: %v", err)
	}
	return string(pem)
}

// SentryPath is the sentry binary: $ORDERMESH_SENTRY, else the pinned build
// beside daprd.
func SentryPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("ORDERMESH_SENTRY")
	if p == "" {
		p = filepath.Join(filepath.Dir(DaprdPath(t)), "sentry")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("harness: sentry not found at %s; run `make toolchain` (or set ORDERMESH_SENTRY)", p)
	}
	return p
}

// StartSentry starts a Sentry with fresh issuer credentials under dir and
// waits until it serves. Every system has one; a test may start a second
// one to play a foreign certificate authority.
func StartSentry(t testing.TB, dir, configPath string, track func(*Proc)) *Sentry {
	t.Helper()
	ports, err := freePorts(3)
	if err != nil {
		t.Fatalf("harness: sentry ports: %v", err)
	}
	se := &Sentry{Port: ports[0], HealthPort: ports[1], MetricsPort: ports[2], CredsDir: filepath.Join(dir, "creds")}
	if err := os.MkdirAll(se.CredsDir, 0o700); err != nil {
		t.Fatalf("harness: %v", err)
	}
	args := []string{
		"--issuer-credentials", se.CredsDir,
		"--trust-domain", "localhost",
		"--listen-address", "127.0.0.1",
		"--port", strconv.Itoa(se.Port),
		"--healthz-listen-address", "127.0.0.1",
		"--healthz-port", strconv.Itoa(se.HealthPort),
		"--metrics-listen-address", "127.0.0.1",
		"--metrics-port", strconv.Itoa(se.MetricsPort),
		"--config", configPath,
		"--log-level", "info",
	}
	p, err := startProc("sentry-"+filepath.Base(dir), "sentry", SentryPath(t), args, nil, filepath.Join(dir, "logs"))
	if err != nil {
		t.Fatalf("harness: start sentry: %v", err)
	}
	se.proc = p
	if track != nil {
		track(p)
	} else {
		t.Cleanup(p.Stop)
	}
	client := &http.Client{Timeout: time.Second}
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		if p.Exited() {
			t.Fatalf("harness: sentry exited: %v\n%s", p.ExitErr(), p.Tail(30))
		}
		res, err := client.Get("http://127.0.0.1:" + strconv.Itoa(se.HealthPort) + "/healthz")
		if err == nil {
			res.Body.Close()
			if _, statErr := os.Stat(filepath.Join(se.CredsDir, "ca.crt")); res.StatusCode == http.StatusOK && statErr == nil {
				return se
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("harness: sentry not healthy after 30s\n%s", p.Tail(30))
	return nil
}

// newToken returns a random API token.
func newToken() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("harness: random token: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// StartLoneSidecar starts one more daprd without an app, claiming app id
// appID and taking its certificate from sentry, with the system's resources,
// Configuration and API token. A test plays an impostor with it: a sidecar
// whose certificate comes from another Sentry. It returns the sidecar's HTTP
// API base URL once it answers.
func (s *System) StartLoneSidecar(appID string, sentry *Sentry) string {
	s.t.Helper()
	ports, err := freePorts(4)
	if err != nil {
		s.t.Fatalf("harness: ports: %v", err)
	}
	args := []string{
		"--app-id", appID,
		"--dapr-http-port", strconv.Itoa(ports[0]),
		"--dapr-grpc-port", strconv.Itoa(ports[1]),
		"--dapr-internal-grpc-port", strconv.Itoa(ports[2]),
		"--metrics-port", strconv.Itoa(ports[3]),
		"--dapr-listen-addresses", "127.0.0.1",
		"--resources-path", s.ResourcesDir(),
		"--config", s.ConfigPath(),
		"--placement-host-address", "",
		"--scheduler-host-address", "",
		"--enable-mtls", "--sentry-address", sentry.Address(),
		"--log-level", logLevel(),
	}
	env := []string{"DAPR_TRUST_ANCHORS=" + sentry.TrustAnchors(s.t), "DAPR_API_TOKEN=" + s.DaprToken}
	p := s.start("lone-"+appID, "sidecar", s.daprd, args, env)
	base := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	end := time.Now().Add(30 * time.Second)
	for time.Now().Before(end) {
		if p.Exited() {
			s.t.Fatalf("harness: lone sidecar exited: %v\n%s", p.ExitErr(), p.Tail(30))
		}
		if res, err := s.client.Get(base + "/v1.0/healthz/outbound"); err == nil {
			res.Body.Close()
			if res.StatusCode/100 == 2 {
				return base
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	s.t.Fatalf("harness: lone sidecar not healthy after 30s\n%s", p.Tail(30))
	return ""
}
