//go:build bench

package bench

import (
	"os"
	"testing"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestMain removes the app binaries the harness built for the run.
func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}
