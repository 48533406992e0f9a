//go:build e2e && docker

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// The container tests (build tags e2e and docker, `make docker-test`) need a
// Docker daemon and the images `make images` builds. Without a daemon they
// skip, unless ORDERMESH_REQUIRE_DOCKER=1 (set by `make docker-test`) makes
// that a failure.

// requireDocker skips or fails the test when no Docker daemon answers.
func requireDocker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		dockerMissing(t, fmt.Sprintf("no Docker daemon answers: %v: %s", err, bytes.TrimSpace(out)))
	}
}

func dockerMissing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("ORDERMESH_REQUIRE_DOCKER") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// composeCommand is the Compose the tests drive: $ORDERMESH_COMPOSE ("docker
// compose" or "docker-compose"), else Compose v2 if the docker CLI has it,
// else v1's docker-compose (Debian 12's package).
func composeCommand(t *testing.T) []string {
	t.Helper()
	if c := strings.Fields(os.Getenv("ORDERMESH_COMPOSE")); len(c) > 0 {
		return c
	}
	if exec.Command("docker", "compose", "version").Run() == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	dockerMissing(t, "neither `docker compose` nor `docker-compose` is installed")
	return nil
}

// composeProject is one run of compose.yaml under a project name of its own.
type composeProject struct {
	t       *testing.T
	command []string // "docker compose" or "docker-compose"
	args    []string // options before the subcommand: -p, -f, --env-file
	env     []string
	Name    string
	Gateway string // base URL of the published gateway
	isDown  bool
}

// newComposeProject prepares a project on a free gateway port. files are
// compose files relative to the repository root (compose.yaml first).
func newComposeProject(t *testing.T, files ...string) *composeProject {
	t.Helper()
	requireDocker(t)
	root := harness.RepoRoot(t)
	port := freePort(t)
	// Issuer credentials of the project's own: a Sentry on this machine makes
	// them and stops; the compose Sentry signs with them and the sidecars
	// trust their root certificate.
	var sentryProc *harness.Proc
	sentry := harness.StartSentry(t, t.TempDir(), filepath.Join(root, "dapr", "config.yaml"), func(p *harness.Proc) {
		sentryProc = p
		t.Cleanup(p.Stop)
	})
	anchors := sentry.TrustAnchors(t)
	sentryProc.Stop()
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	require.NoError(t, harness.WriteJWKS(t, jwks), "the gateway's token keys")
	p := &composeProject{
		t:       t,
		command: composeCommand(t),
		Name:    "omtest" + strings.ReplaceAll(uuid.NewString()[:8], "-", ""),
		Gateway: "http://127.0.0.1:" + strconv.Itoa(port),
		env: append(os.Environ(),
			"GATEWAY_PORT="+strconv.Itoa(port),
			"SENTRY_CREDS="+sentry.CredsDir,
			"AUTH_JWKS_FILE="+jwks,
			"DAPR_TRUST_ANCHORS="+anchors,
			"APP_API_TOKEN="+strings.ReplaceAll(uuid.NewString(), "-", ""),
			"DAPR_API_TOKEN="+strings.ReplaceAll(uuid.NewString(), "-", ""),
		),
	}
	p.args = []string{"-p", p.Name}
	for _, f := range files {
		p.args = append(p.args, "-f", filepath.Join(root, f))
	}
	// The images `make images` built, unless the environment names others
	// (DAPRD_IMAGE, REDIS_IMAGE, ...: the environment wins over the file).
	if envFile := filepath.Join(root, ".images", "images.env"); fileExists(envFile) {
		p.args = append([]string{"--env-file", envFile}, p.args...)
	} else {
		t.Logf("compose: no .images/images.env (run `make images`); using the image names of compose.yaml and the environment")
	}
	t.Logf("compose: %s, project %s, gateway %s", strings.Join(p.command, " "), p.Name, p.Gateway)
	return p
}

// run runs one compose subcommand and returns its output.
func (p *composeProject) run(timeout time.Duration, sub ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append(append(append([]string{}, p.command[1:]...), p.args...), sub...)
	cmd := exec.CommandContext(ctx, p.command[0], args...)
	cmd.Env = p.env
	cmd.Dir = harness.RepoRoot(p.t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("%s %s: %w", strings.Join(p.command, " "), strings.Join(sub, " "), err)
	}
	return string(out), err
}

// Up starts the project and registers its removal, which also checks that
// nothing of it is left, and prints the logs if the test failed.
func (p *composeProject) Up() {
	t := p.t
	t.Helper()
	t.Cleanup(p.down)
	out, err := p.run(10*time.Minute, "up", "-d")
	require.NoError(t, err, "%s\n(`make images` builds the images compose.yaml needs)", out)
}

func (p *composeProject) down() {
	t := p.t
	if p.isDown {
		return
	}
	if t.Failed() {
		if out, err := p.run(time.Minute, "ps", "-a"); err == nil {
			t.Logf("---- compose ps ----\n%s", out)
		}
		if out, err := p.run(time.Minute, "logs", "--no-color", "--tail", "40"); err == nil {
			t.Logf("---- compose logs ----\n%s", out)
		}
	}
	out, err := p.run(5*time.Minute, "down", "-v", "--remove-orphans")
	assert.NoError(t, err, "%s", out)
	label := "label=com.docker.compose.project=" + p.Name
	for _, what := range [][]string{{"ps", "-a", "--format", "{{.Names}}"}, {"network", "ls", "--format", "{{.Name}}"}, {"volume", "ls", "--format", "{{.Name}}"}} {
		args := append(append([]string{}, what...), "--filter", label)
		left, err := exec.Command("docker", args...).CombinedOutput()
		assert.NoError(t, err, "docker %s: %s", strings.Join(args, " "), left)
		assert.Empty(t, strings.TrimSpace(string(left)), "docker %s %s: left after down", what[0], what[1])
	}
	p.isDown = true
}

// WaitReady polls the gateway's /api/status until every app reports ready.
func (p *composeProject) WaitReady(within time.Duration) {
	p.t.Helper()
	eventually(p.t, within, func() (bool, string) {
		req, err := http.NewRequestWithContext(p.t.Context(), http.MethodGet, p.Gateway+"/api/status", nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("Authorization", "Bearer "+harness.Token(p.t, operatorCaller)) // status is the operator's
		res, err := httpClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		var st statusReport
		if res.StatusCode != http.StatusOK || json.Unmarshal(body, &st) != nil {
			return false, fmt.Sprintf("status %d: %s", res.StatusCode, body)
		}
		for _, app := range harness.Apps {
			if a, ok := st.Apps[app]; app != "gateway" && (!ok || !a.Ready) {
				return false, fmt.Sprintf("%s not ready: %s", app, body)
			}
		}
		return true, ""
	})
}

// TestCompose runs compose.yaml as a user would: up, the order flow through
// the published gateway, a service taken down, and down leaving nothing.
func TestCompose(t *testing.T) {
	t.Run("redis", func(t *testing.T) {
		p := newComposeProject(t, "compose.yaml")
		p.Up()
		p.WaitReady(3 * time.Minute)
		gw := p.Gateway

		u, o := orderFlow(t, gw)
		res := do(t, http.MethodGet, gw+"/api/users/"+u.ID, nil)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)

		out, err := p.run(2*time.Minute, "stop", "users")
		require.NoError(t, err, "%s", out)

		// The gateway serves the copy of the user it read before.
		eventually(t, 60*time.Second, func() (bool, string) {
			res := do(t, http.MethodGet, gw+"/api/users/"+u.ID, nil)
			var got user
			if res.Status != http.StatusOK || json.Unmarshal(res.Body, &got) != nil {
				return false, fmt.Sprintf("%d %s", res.Status, res.Body)
			}
			return got.Cached && got.ID == u.ID, string(res.Body)
		})
		// Placing an order needs users: orders answers 503 at once.
		eventually(t, 60*time.Second, func() (bool, string) {
			res := do(t, http.MethodPost, gw+"/api/orders", map[string]any{"user_id": u.ID, "product_id": o.ProductID, "quantity": 1})
			return res.Status == http.StatusServiceUnavailable && res.ErrorCode() == "dependency_unavailable",
				fmt.Sprintf("%d %s", res.Status, res.Body)
		})

		p.down()
	})

	t.Run("rabbitmq", func(t *testing.T) {
		p := newComposeProject(t, "compose.yaml", "components/compose/rabbitmq.yaml")
		p.Up()
		p.WaitReady(3 * time.Minute)
		orderFlow(t, p.Gateway)
		p.down()
	})
}

// orderFlow creates a user and a product, places an order and waits for its
// email notification.
func orderFlow(t *testing.T, gw string) (user, order) {
	t.Helper()
	u := createUser(t, gw)
	pr := createProduct(t, gw, 2599, 10)
	o := placeOrder(t, gw, u.ID, pr.ID, 2)
	assert.Equal(t, int64(2*2599), o.TotalCents)
	assert.Equal(t, "created", o.Status)
	list := waitNotifications(t, gw, u.ID, 1)
	assert.Equal(t, o.ID, list[0].OrderID)
	assert.Equal(t, "order_created", list[0].Type)
	assert.Equal(t, "email", list[0].Channel)
	return u, o
}

// TestComposeComponentsMatch holds components/compose/ (what compose.yaml
// mounts) to components/ (what `dapr run -f .` and the harness use): the same
// files, names, types, scopes and settings; only the servers' addresses
// differ.
func TestComposeComponentsMatch(t *testing.T) {
	root := harness.RepoRoot(t)
	addresses := map[string]bool{"redisHost": true, "connectionString": true}
	for _, rel := range []string{"state", "pubsub/redis", "pubsub/rabbitmq"} {
		t.Run(rel, func(t *testing.T) {
			want, err := filepath.Glob(filepath.Join(root, "components", rel, "*.yaml"))
			require.NoError(t, err)
			got, err := filepath.Glob(filepath.Join(root, "components", "compose", rel, "*.yaml"))
			require.NoError(t, err)
			require.Equal(t, baseNames(want), baseNames(got), "files")
			for _, f := range want {
				a := loadComponent(t, f, addresses)
				b := loadComponent(t, filepath.Join(root, "components", "compose", rel, filepath.Base(f)), addresses)
				assert.Equal(t, a, b, "%s and its compose variant differ beyond the server address", filepath.Base(f))
			}
		})
	}
}

// loadComponent reads a component with the named metadata values blanked.
func loadComponent(t *testing.T, path string, blank map[string]bool) map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	var doc map[string]any
	require.NoError(t, yaml.Unmarshal(raw, &doc), path)
	spec, _ := doc["spec"].(map[string]any)
	items, _ := spec["metadata"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && blank[fmt.Sprint(m["name"])] {
			m["value"] = "<address>"
		}
	}
	return doc
}

func baseNames(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		out[i] = filepath.Base(p)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, os.ErrNotExist)
}
