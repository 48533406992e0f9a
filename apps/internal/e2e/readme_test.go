//go:build e2e

package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/identity/devkey"
)

// TestREADMECallingIt runs the README's first "Calling it" example as it is
// written, with bash and curl, against a system whose gateway trusts a
// development key made the way `make run` makes it (devtoken -init). Only the
// gateway's address and devtoken's key folder are swapped in.
func TestREADMECallingIt(t *testing.T) {
	root := harness.RepoRoot(t)
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	section := string(data)[strings.Index(string(data), "## Calling it\n"):]
	start := strings.Index(section, "```sh\n")
	require.GreaterOrEqual(t, start, 0)
	block := section[start+len("```sh\n"):]
	block = block[:strings.Index(block, "```")]

	keys := filepath.Join(t.TempDir(), "auth")
	devtoken := filepath.Join(t.TempDir(), "devtoken")
	build := exec.Command("go", "build", "-o", devtoken, "./apps/internal/devtoken")
	build.Dir = root
	out, err := build.CombinedOutput()
	require.NoError(t, err, "%s", out)
	out, err = exec.Command(devtoken, "-dir", keys, "-init").CombinedOutput()
	require.NoError(t, err, "%s", out)

	sys := harness.Start(t, harness.Options{Env: map[string]map[string]string{
		"gateway": {"AUTH_JWKS": filepath.Join(keys, devkey.JWKSFile)},
	}})
	host := strings.TrimPrefix(sys.GatewayURL(), "http://")
	require.Contains(t, block, "localhost:8080")
	require.Contains(t, block, "bin/devtoken")
	script := strings.ReplaceAll(block, "localhost:8080", host)
	script = strings.ReplaceAll(script, "bin/devtoken", devtoken+" -dir "+keys)
	// The README's email is fixed; this run must not collide with others.
	script = strings.ReplaceAll(script, "ada@example.com", uniqueEmail())
	script = "set -eu\n" + script + "\necho \"ids: $USER_ID $PRODUCT_ID $ORDER_ID\"\n"

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-c", script)
	cmd.Dir = root
	out, err = cmd.CombinedOutput()
	output := string(out)
	require.NoError(t, err, "%s", output)
	t.Logf("README example output:\n%s", output)

	id := `[A-Za-z0-9_-]{1,64}`
	assert.Regexp(t, regexp.MustCompile(`ids: `+id+` `+id+` `+id+`\n`), output, "every id was read from an answer")
	assert.NotContains(t, output, `"error"`, "no call of the example failed")
	assert.Contains(t, output, "HTTP/1.1 201 Created", "the payment was taken")
	assert.Contains(t, output, `"status":"shipped"`)
	assert.Contains(t, output, `"channel":"email"`, "the order's notification arrived")
	assert.Contains(t, output, `"apps":`, "the status report")
}
