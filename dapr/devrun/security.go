package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// sentryAddress is where the Dapr CLI sends every sidecar for its
// certificate when the Configuration turns mTLS on; the CLI cannot be told
// another address.
const sentryAddress = "127.0.0.1:50001"

// security is what the sidecars and apps of one run need besides the run
// file: the trust anchors of Sentry, the app token, and a loopback address
// to announce over mDNS.
type security struct {
	env    []string
	sentry *exec.Cmd
}

// prepareSecurity starts Sentry (or uses the one dapr/scripts/sentry.sh
// started) when mtls is on; when it is off it points the run file at a copy of
// the Configuration without mTLS and access policies. It returns the run file
// to use.
func prepareSecurity(root string, mtls bool, runFile []byte) (*security, []byte, error) {
	sec := &security{env: []string{
		// Sidecars announce loopback, not the host's address, over mDNS.
		"DAPR_HOST_IP=127.0.0.1",
	}}
	// Each app accepts calls only from its sidecar, which sends this token.
	// DAPR_API_TOKEN (for the sidecars' own API) is left to the user: the
	// dapr CLI 1.16 cannot send it, so `dapr list`, `dapr invoke` and
	// `dapr publish` would stop working (see README, Security).
	if os.Getenv("APP_API_TOKEN") == "" {
		sec.env = append(sec.env, "APP_API_TOKEN="+randomToken())
	}
	state := filepath.Join(root, ".run")
	if !mtls {
		fmt.Println("devrun: mTLS and access policies are OFF (MTLS=off); use this for debugging only")
		if !bytes.Contains(runFile, []byte("./dapr/config.yaml")) {
			return sec, runFile, nil // the run file names a Configuration of its own
		}
		cfg, err := insecureConfig(root, state)
		if err != nil {
			return nil, nil, err
		}
		return sec, bytes.ReplaceAll(runFile, []byte("./dapr/config.yaml"), []byte(cfg)), nil
	}
	creds := filepath.Join(state, "sentry", "creds")
	if !listening(sentryAddress) {
		cmd, err := startSentry(root, creds)
		if err != nil {
			return nil, nil, err
		}
		sec.sentry = cmd
	} else {
		fmt.Printf("devrun: using the Sentry already on %s\n", sentryAddress)
	}
	anchors, err := os.ReadFile(filepath.Join(creds, "ca.crt"))
	if err != nil {
		return nil, nil, fmt.Errorf("something listens on %s but %s has no trust anchors: stop it or run dapr/scripts/sentry.sh start: %w", sentryAddress, creds, err)
	}
	sec.env = append(sec.env, "DAPR_TRUST_ANCHORS="+string(anchors))
	return sec, runFile, nil
}

// stop ends the Sentry this run started.
func (s *security) stop() {
	if s.sentry == nil {
		return
	}
	_ = s.sentry.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.sentry.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-s.sentry.Process.Pid, syscall.SIGKILL)
	}
}

func startSentry(root, creds string) (*exec.Cmd, error) {
	if err := os.MkdirAll(creds, 0o700); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(filepath.Dir(creds), "sentry.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	fmt.Printf("devrun: starting Sentry on %s (issuer credentials in .run/sentry/creds) ...\n", sentryAddress)
	cmd := exec.Command(filepath.Join(root, ".dapr", "bin", "sentry"),
		"--issuer-credentials", creds, "--trust-domain", "localhost",
		"--listen-address", "127.0.0.1", "--port", "50001",
		"--healthz-listen-address", "127.0.0.1", "--healthz-port", "50081",
		"--metrics-listen-address", "127.0.0.1", "--metrics-port", "50091",
		"--config", filepath.Join(root, "dapr", "config.yaml"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start sentry (run `make toolchain`): %w", err)
	}
	for range 100 {
		if _, err := os.Stat(filepath.Join(creds, "ca.crt")); err == nil && listening(sentryAddress) {
			return cmd, nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	return nil, errors.New("sentry did not start in 10s; see .run/sentry/sentry.log")
}

// insecureConfig writes the Configuration without mtls and accessControl.
func insecureConfig(root, state string) (string, error) {
	raw, err := os.ReadFile(filepath.Join(root, "dapr", "config.yaml"))
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", err
	}
	if spec, ok := doc["spec"].(map[string]any); ok {
		delete(spec, "mtls")
		delete(spec, "accessControl")
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(state, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(state, "config-insecure.yaml")
	return path, os.WriteFile(path, out, 0o644)
}

func listening(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func randomToken() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
