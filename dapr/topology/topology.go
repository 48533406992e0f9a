// Package topology declares orderpubsub's RabbitMQ topology before any app
// starts: a durable exchange per topic and a durable queue per subscription,
// bound to it, read from the one file that says who consumes what
// (dapr/resources/subscriptions.yaml) and shaped exactly as daprd declares
// them (components/pubsub/rabbitmq/orderpubsub.yaml).
//
// Why: RabbitMQ drops a message published to an exchange no queue is bound
// to, and daprd declares a subscriber's queue only when that subscriber's
// sidecar starts. Without this, an order placed before notifications first
// started (a first deployment, a new subscriber) loses its event. With it,
// the event waits in notifications' queue.
//
// Redis Streams need nothing of the kind: daprd creates a consumer group at
// the start of its stream ("0"), so a group created after events were added
// still reads them.
package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"gopkg.in/yaml.v3"
)

// Subscription is one declarative Dapr subscription, as far as the broker
// needs it.
type Subscription struct {
	Name            string
	PubSub          string
	Topic           string
	DeadLetterTopic string
	Scopes          []string // the subscribing apps' ids
}

// ReadSubscriptions reads every Subscription document of a YAML file.
func ReadSubscriptions(path string) ([]Subscription, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var subs []Subscription
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var doc struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				PubSubName      string `yaml:"pubsubname"`
				Topic           string `yaml:"topic"`
				DeadLetterTopic string `yaml:"deadLetterTopic"`
			} `yaml:"spec"`
			Scopes []string `yaml:"scopes"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if doc.Kind != "Subscription" {
			continue
		}
		if doc.Spec.Topic == "" || doc.Spec.PubSubName == "" {
			return nil, fmt.Errorf("%s: subscription %q names no topic or pubsub", path, doc.Metadata.Name)
		}
		if len(doc.Scopes) == 0 {
			// Unscoped, every app subscribes: no finite set of queues.
			return nil, fmt.Errorf("%s: subscription %q has no scopes; the topology needs its subscribers", path, doc.Metadata.Name)
		}
		subs = append(subs, Subscription{
			Name: doc.Metadata.Name, PubSub: doc.Spec.PubSubName, Topic: doc.Spec.Topic,
			DeadLetterTopic: doc.Spec.DeadLetterTopic, Scopes: doc.Scopes,
		})
	}
	return subs, nil
}

// Component is how daprd's RabbitMQ component declares exchanges and queues,
// read from its metadata. A queue declared with other arguments than daprd
// uses would make daprd's own declaration fail (PRECONDITION_FAILED).
type Component struct {
	Name string
	// URL is the component's connectionString: where the broker is.
	URL               string
	Durable           bool
	DeletedWhenUnused bool
	ExchangeKind      string
	MaxLen            int64
	MaxLenBytes       int64
}

// ReadComponent reads the pubsub.rabbitmq component of a file. Options that
// change the queues' shape in ways this package does not mirror (daprd's
// own dead-letter exchanges) are refused rather than guessed.
func ReadComponent(path string) (Component, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Component{}, err
	}
	var doc struct {
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Type     string `yaml:"type"`
			Metadata []struct {
				Name  string `yaml:"name"`
				Value string `yaml:"value"`
			} `yaml:"metadata"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return Component{}, fmt.Errorf("%s: %w", path, err)
	}
	if doc.Spec.Type != "pubsub.rabbitmq" {
		return Component{}, fmt.Errorf("%s: type %q, want pubsub.rabbitmq", path, doc.Spec.Type)
	}
	// daprd's defaults (components-contrib pubsub/rabbitmq metadata.go).
	c := Component{Name: doc.Metadata.Name, Durable: false, ExchangeKind: "fanout"}
	for _, m := range doc.Spec.Metadata {
		var err error
		switch m.Name {
		case "connectionString":
			c.URL = m.Value
		case "durable":
			c.Durable, err = strconv.ParseBool(m.Value)
		case "deletedWhenUnused":
			c.DeletedWhenUnused, err = strconv.ParseBool(m.Value)
		case "exchangeKind":
			c.ExchangeKind = m.Value
		case "maxLen":
			c.MaxLen, err = strconv.ParseInt(m.Value, 10, 64)
		case "maxLenBytes":
			c.MaxLenBytes, err = strconv.ParseInt(m.Value, 10, 64)
		case "enableDeadLetter":
			if on, _ := strconv.ParseBool(m.Value); on {
				return Component{}, fmt.Errorf("%s: enableDeadLetter adds RabbitMQ dead-letter exchanges this package does not declare", path)
			}
		}
		if err != nil {
			return Component{}, fmt.Errorf("%s: metadata %s: %w", path, m.Name, err)
		}
	}
	return c, nil
}

// Queue is one subscriber's queue and the exchange (topic) it is bound to.
type Queue struct {
	Name     string
	Exchange string
}

// Plan lists the exchanges and queues for the subscriptions of one pub/sub
// component. appID maps a subscription's scope (an app id as written in the
// file) to the app id it runs under; daprd names a queue
// "<app id>-<topic>". Every dead-letter topic is an exchange too, so a
// dropped event is never published to nothing.
func Plan(subs []Subscription, pubsub string, appID func(string) string) (exchanges []string, queues []Queue) {
	seen := map[string]bool{}
	addExchange := func(name string) {
		if name != "" && !seen[name] {
			seen[name] = true
			exchanges = append(exchanges, name)
		}
	}
	for _, s := range subs {
		if s.PubSub != pubsub {
			continue
		}
		addExchange(s.Topic)
		addExchange(s.DeadLetterTopic)
		for _, scope := range s.Scopes {
			queues = append(queues, Queue{Name: appID(scope) + "-" + s.Topic, Exchange: s.Topic})
		}
	}
	return exchanges, queues
}

// Declare connects to the broker at url (an AMQP URL, with the virtual host
// as its path) and declares the exchanges, queues and bindings. Declaring
// what already exists with the same shape changes nothing, so it is safe to
// run before every start.
func Declare(ctx context.Context, url string, c Component, exchanges []string, queues []Queue) error {
	conn, err := dialWithin(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	for _, ex := range exchanges {
		// daprd: ExchangeDeclare(topic, exchangeKind, durable, deletedWhenUnused, false, false, nil).
		if err := ch.ExchangeDeclare(ex, c.ExchangeKind, c.Durable, c.DeletedWhenUnused, false, false, nil); err != nil {
			return fmt.Errorf("declare exchange %s: %w", ex, err)
		}
	}
	args := amqp.Table{}
	if c.MaxLen > 0 {
		args["x-max-length"] = c.MaxLen
	}
	if c.MaxLenBytes > 0 {
		args["x-max-length-bytes"] = c.MaxLenBytes
	}
	for _, q := range queues {
		if _, err := ch.QueueDeclare(q.Name, c.Durable, c.DeletedWhenUnused, false, false, args); err != nil {
			return fmt.Errorf("declare queue %s: %w", q.Name, err)
		}
		if err := ch.QueueBind(q.Name, "", q.Exchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to %s: %w", q.Name, q.Exchange, err)
		}
	}
	return nil
}

// dialWithin dials until it succeeds or ctx ends: a broker that was just
// started may not accept connections yet.
func dialWithin(ctx context.Context, url string) (*amqp.Connection, error) {
	for {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
		if err == nil {
			return conn, nil
		}
		// The broker answered and refused (credentials, virtual host):
		// asking again changes nothing.
		var refused *amqp.Error
		if errors.As(err, &refused) {
			return nil, fmt.Errorf("connect to rabbitmq: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to rabbitmq: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Apply reads the subscriptions and the component from their files and
// declares the topology: what the command, `make run` and the harness run.
// An empty url means the component's own connectionString.
func Apply(ctx context.Context, url, subscriptionsFile, componentFile string, appID func(string) string) (exchanges []string, queues []Queue, err error) {
	subs, err := ReadSubscriptions(subscriptionsFile)
	if err != nil {
		return nil, nil, err
	}
	c, err := ReadComponent(componentFile)
	if err != nil {
		return nil, nil, err
	}
	if url == "" {
		url = c.URL
	}
	exchanges, queues = Plan(subs, c.Name, appID)
	return exchanges, queues, Declare(ctx, url, c, exchanges, queues)
}

// Messages reports how many messages wait in a queue (ready, not yet
// delivered), read with a passive declaration: it needs no management API
// and creates nothing.
func Messages(ctx context.Context, url, queue string) (int, error) {
	conn, err := dialWithin(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return 0, fmt.Errorf("open channel: %w", err)
	}
	defer ch.Close()
	q, err := ch.QueueDeclarePassive(queue, false, false, false, false, nil)
	if err != nil {
		return 0, fmt.Errorf("queue %s: %w", queue, err)
	}
	return q.Messages, nil
}
