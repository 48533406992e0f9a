package topology

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The repository's own files: the plan is what daprd would declare for
// them, one queue per subscribing app and topic, and every dead-letter
// topic is an exchange.
func TestPlanFromRepositoryFiles(t *testing.T) {
	subs, err := ReadSubscriptions("../resources/subscriptions.yaml")
	require.NoError(t, err)
	c, err := ReadComponent("../../components/pubsub/rabbitmq/orderpubsub.yaml")
	require.NoError(t, err)
	assert.Equal(t, Component{Name: "orderpubsub", URL: "amqp://guest:guest@localhost:5672", Durable: true, ExchangeKind: "fanout"}, c)

	exchanges, queues := Plan(subs, c.Name, func(id string) string { return id + "-x1" })
	assert.ElementsMatch(t, []string{"orders", "payments", "deadletters"}, exchanges)
	assert.ElementsMatch(t, []Queue{
		{Name: "notifications-x1-orders", Exchange: "orders"},
		{Name: "orders-x1-payments", Exchange: "payments"},
		{Name: "notifications-x1-deadletters", Exchange: "deadletters"},
	}, queues)
}

func TestReadRefuses(t *testing.T) {
	tests := []struct {
		name, file string
		read       func(string) error
	}{
		{"subscription without scopes", "apiVersion: dapr.io/v2alpha1\nkind: Subscription\nmetadata: {name: s}\nspec: {pubsubname: p, topic: t}\n",
			func(p string) error { _, err := ReadSubscriptions(p); return err }},
		{"subscription without topic", "kind: Subscription\nmetadata: {name: s}\nspec: {pubsubname: p}\nscopes: [a]\n",
			func(p string) error { _, err := ReadSubscriptions(p); return err }},
		{"component of another type", "kind: Component\nmetadata: {name: p}\nspec: {type: pubsub.redis}\n",
			func(p string) error { _, err := ReadComponent(p); return err }},
		{"daprd's own dead-letter exchanges", "kind: Component\nmetadata: {name: p}\nspec:\n  type: pubsub.rabbitmq\n  metadata: [{name: enableDeadLetter, value: \"true\"}]\n",
			func(p string) error { _, err := ReadComponent(p); return err }},
		{"a malformed durable flag", "kind: Component\nmetadata: {name: p}\nspec:\n  type: pubsub.rabbitmq\n  metadata: [{name: durable, value: \"yes please\"}]\n",
			func(p string) error { _, err := ReadComponent(p); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f.yaml")
			require.NoError(t, os.WriteFile(path, []byte(tt.file), 0o644))
			assert.Error(t, tt.read(path))
		})
	}
}

func TestWithVhost(t *testing.T) {
	u, user, err := WithVhost("amqp://guest:guest@localhost:5672", "ordermesh-e2e1")
	require.NoError(t, err)
	assert.Equal(t, "amqp://guest:guest@localhost:5672/ordermesh-e2e1", u)
	assert.Equal(t, "guest", user)
}
