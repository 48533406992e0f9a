package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ordermesh/ordermesh/dapr/topology"
)

// isolateBroker gives a RabbitMQ system a virtual host of its own on a
// shared broker, deleted (with every exchange, queue and message in it) when
// the test ends: systems never see each other's events, nor `make run`'s,
// and leave nothing behind. A broker of the system's own needs none.
func (s *System) isolateBroker() {
	if s.opts.PubSub != "rabbitmq" || s.infra.OwnBroker {
		return
	}
	t := s.t
	// "ordermesh-e2e-<pid>-<n>": the pid tells a later run whether the
	// system's process is gone without its cleanup (interrupted).
	vhost := fmt.Sprintf("ordermesh-e2e-%d-%d", os.Getpid(), s.n)
	url, user, err := topology.WithVhost(s.infra.RabbitMQ, vhost)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	ctl := topology.Rabbitmqctl{Node: s.infra.RabbitMQNode}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sweepOnce.Do(func() { sweepVhosts(ctx, t, ctl) })
	if err := ctl.AddVhost(ctx, vhost, user); err != nil {
		t.Fatalf("harness: a virtual host for the system (rabbitmqctl must reach the broker's node; ORDERMESH_RABBITMQ_NODE names it): %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := ctl.DeleteVhost(ctx, vhost); err != nil {
			t.Errorf("harness: delete the system's virtual host: %v", err)
		}
	})
	s.infra.RabbitMQ = url
	s.Vhost = vhost
}

// declareTopology declares the exchanges, durable queues and bindings of
// every subscription before any sidecar starts, as `make run` and compose
// do, so an event published before its subscriber first starts waits for
// it (dapr/topology).
func (s *System) declareTopology() {
	if s.opts.PubSub != "rabbitmq" {
		return
	}
	root := RepoRoot(s.t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, _, err := topology.Apply(ctx, s.infra.RabbitMQ,
		filepath.Join(root, "dapr", "resources", "subscriptions.yaml"),
		filepath.Join(root, "components", "pubsub", "rabbitmq", "orderpubsub.yaml"),
		s.appID)
	if err != nil {
		s.t.Fatalf("harness: declare the broker's topology: %v", err)
	}
}

// RabbitMQURL is the AMQP URL the system's sidecars use, its virtual host
// included.
func (s *System) RabbitMQURL() string { return s.infra.RabbitMQ }

// QueueMessages reports how many messages wait in the RabbitMQ queue of an
// app (by plain name) for a topic: daprd's queue "<app id>-<topic>".
func (s *System) QueueMessages(app, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return topology.Messages(ctx, s.infra.RabbitMQ, s.appID(app)+"-"+topic)
}

var sweepOnce sync.Once

// sweepVhosts deletes the virtual hosts of test processes that ended
// without their cleanup (a test binary interrupted or killed), once per
// test binary.
func sweepVhosts(ctx context.Context, t testing.TB, ctl topology.Rabbitmqctl) {
	vhosts, err := ctl.Vhosts(ctx)
	if err != nil {
		t.Logf("harness: list virtual hosts: %v", err)
		return
	}
	for _, v := range vhosts {
		rest, ok := strings.CutPrefix(v, "ordermesh-e2e-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(rest, "-")
		if pid, err := strconv.Atoi(pidText); err == nil && pid != os.Getpid() && !Alive(pid) {
			if err := ctl.DeleteVhost(ctx, v); err == nil {
				t.Logf("harness: deleted %s, left by an interrupted test process", v)
			}
		}
	}
}

// InFlight reports how many events of a topic an app's subscription has not
// settled yet: on RabbitMQ its queue's ready and unacknowledged messages, on
// Redis Streams its consumer group's pending entries and lag (entries not yet
// delivered). Zero means every event published so far was handled and
// acknowledged, whatever order the sidecar delivered them in.
func (s *System) InFlight(app, topic string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if s.opts.PubSub == "rabbitmq" {
		vhost := s.Vhost
		if vhost == "" {
			vhost = "/"
		}
		queues, err := topology.Rabbitmqctl{Node: s.infra.RabbitMQNode}.Queues(ctx, vhost)
		if err != nil {
			return 0, err
		}
		name := s.appID(app) + "-" + topic
		for _, q := range queues {
			if q.Name == name {
				return q.Ready + q.Unacked, nil
			}
		}
		return 0, fmt.Errorf("no queue %s in virtual host %s", name, vhost)
	}
	// XINFO GROUPS answers each group as a flat list of field, value pairs;
	// "lag" is nil when Redis cannot tell, counted as unknown (-1).
	script := `if redis.call('EXISTS', KEYS[1]) == 0 then return -2 end
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i+1] end
  if f['name'] == ARGV[1] then
    if type(f['lag']) ~= 'number' then return -1 end
    return f['pending'] + f['lag']
  end
end
return -2`
	got, err := s.RedisDo("EVAL", script, "1", topic, s.appID(app))
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(got, ":"))
	switch {
	case err != nil:
		return 0, fmt.Errorf("stream %s: unexpected reply %q", topic, got)
	case n == -2:
		return 0, fmt.Errorf("stream %s has no consumer group %s", topic, s.appID(app))
	case n == -1:
		return 0, fmt.Errorf("stream %s: Redis does not know group %s's lag", topic, s.appID(app))
	}
	return n, nil
}
