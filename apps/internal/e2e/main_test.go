//go:build e2e

package e2e

import (
	"os"
	"testing"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

func TestMain(m *testing.M) {
	code := m.Run()
	harness.Cleanup()
	os.Exit(code)
}
