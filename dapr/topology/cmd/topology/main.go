// Command topology declares orderpubsub's RabbitMQ exchanges, durable queues
// and bindings from dapr/resources/subscriptions.yaml, so an event published
// before its subscriber first starts waits in the subscriber's queue. Run it
// before the apps: `make run PUBSUB=rabbitmq` and compose's rabbitmq setup do.
//
//	go run ./dapr/topology/cmd/topology \
//	  -subscriptions dapr/resources/subscriptions.yaml \
//	  -component components/pubsub/rabbitmq/orderpubsub.yaml \
//	  [-amqp amqp://guest:guest@localhost:5672]    (default: the component's)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ordermesh/ordermesh/dapr/topology"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "topology:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		url       = flag.String("amqp", "", "AMQP URL of the broker, its path the virtual host (default: the component's connectionString)")
		subsFile  = flag.String("subscriptions", "dapr/resources/subscriptions.yaml", "the declarative subscriptions")
		component = flag.String("component", "components/pubsub/rabbitmq/orderpubsub.yaml", "the RabbitMQ pub/sub component")
		within    = flag.Duration("timeout", time.Minute, "how long to wait for the broker")
	)
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), *within)
	defer cancel()
	start := time.Now()
	exchanges, queues, err := topology.Apply(ctx, *url, *subsFile, *component, func(id string) string { return id })
	if err != nil {
		return err
	}
	for _, q := range queues {
		fmt.Printf("topology: queue %s bound to exchange %s\n", q.Name, q.Exchange)
	}
	fmt.Printf("topology: %d exchanges, %d durable queues declared in %s\n", len(exchanges), len(queues), time.Since(start).Round(time.Millisecond))
	return nil
}
