//go:build e2e && docker

package e2e

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestContainers runs the system (daprd and the apps as processes, as in the
// rest of the suite) against Redis, PostgreSQL and RabbitMQ in containers
// that testcontainers-go starts from the locally built images: an order and
// its event, on each broker.
func TestContainers(t *testing.T) {
	requireDocker(t)
	// Registered first, so it runs last: after the containers' removal.
	t.Cleanup(func() {
		out, err := exec.Command("docker", "ps", "-a", "--filter", "label=ordermesh.test="+t.Name(), "--format", "{{.Names}}").CombinedOutput()
		assert.NoError(t, err, "%s", out)
		assert.Empty(t, strings.TrimSpace(string(out)), "containers left after the test")
	})
	infra, ok := harness.ContainerInfra(t)
	if !ok {
		dockerMissing(t, "no Docker daemon answers testcontainers")
	}
	t.Logf("containers: redis %s, postgres %s, rabbitmq %s", infra.Redis, infra.Postgres, infra.RabbitMQ)
	for _, broker := range brokers {
		t.Run(broker, func(t *testing.T) {
			sys := harness.Start(t, harness.Options{PubSub: broker, Infra: infra})
			orderFlow(t, sys.GatewayURL())
		})
	}
}
