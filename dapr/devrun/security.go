package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	env []string
	// stopSentry is the script that stops the Sentry this run started; "" when
	// the run uses one that was already running.
	stopSentry string
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
		if err := startSentry(root); err != nil {
			return nil, nil, err
		}
		sec.stopSentry = filepath.Join(root, "dapr", "scripts", "sentry.sh")
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
	if s.stopSentry == "" {
		return
	}
	cmd := exec.Command(s.stopSentry, "stop")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintf(os.Stderr, "devrun: stopping Sentry: %v\n", err)
	}
}

// startSentry starts Sentry the one way this repository does,
// dapr/scripts/sentry.sh, which prints what it does.
func startSentry(root string) error {
	cmd := exec.Command(filepath.Join(root, "dapr", "scripts", "sentry.sh"), "start")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("start Sentry (dapr/scripts/sentry.sh start): %w", err)
	}
	return nil
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
