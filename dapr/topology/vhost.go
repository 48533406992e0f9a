package topology

import (
	"context"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
)

// Rabbitmqctl manages virtual hosts with RabbitMQ's own CLI, which needs no
// management plugin: it talks to the node over Erlang distribution, so it
// works on the machine running the broker, as root or as the broker's user
// (Debian's wrapper switches to it to read the cookie).
type Rabbitmqctl struct {
	// Node is the Erlang node name (rabbit@host by default: empty).
	Node string
}

// run runs rabbitmqctl on the node, quietly, and returns what it printed
// on standard output.
func (r Rabbitmqctl) run(ctx context.Context, args ...string) ([]byte, error) {
	if r.Node != "" {
		args = append([]string{"-n", r.Node}, args...)
	}
	out, err := exec.CommandContext(ctx, "rabbitmqctl", append(args, "--quiet")...).Output()
	if err != nil {
		var stderr []byte
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = exit.Stderr
		}
		return nil, fmt.Errorf("rabbitmqctl %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(stderr)))
	}
	return out, nil
}

// AddVhost creates a virtual host and lets user do everything in it.
func (r Rabbitmqctl) AddVhost(ctx context.Context, vhost, user string) error {
	if _, err := r.run(ctx, "add_vhost", vhost); err != nil {
		return err
	}
	_, err := r.run(ctx, "set_permissions", "-p", vhost, user, ".*", ".*", ".*")
	return err
}

// Vhosts lists the broker's virtual hosts.
func (r Rabbitmqctl) Vhosts(ctx context.Context) ([]string, error) {
	out, err := r.run(ctx, "list_vhosts", "--no-table-headers")
	if err != nil {
		return nil, err
	}
	return strings.Fields(string(out)), nil
}

// DeleteVhost removes a virtual host with every exchange, queue and message
// in it.
func (r Rabbitmqctl) DeleteVhost(ctx context.Context, vhost string) error {
	_, err := r.run(ctx, "delete_vhost", vhost)
	return err
}

// WithVhost returns the AMQP URL amqpURL pointing at vhost, and its user.
func WithVhost(amqpURL, vhost string) (string, string, error) {
	u, err := url.Parse(amqpURL)
	if err != nil {
		return "", "", fmt.Errorf("parse %q: %w", amqpURL, err)
	}
	u.Path = "/" + vhost
	u.RawPath = "/" + url.PathEscape(vhost)
	return u.String(), u.User.Username(), nil
}

// QueueState is what the broker reports of a queue.
type QueueState struct {
	Name string
	// Consumers subscribed to the queue, on every connection.
	Consumers int
	// Ready messages wait for a consumer; Unacked ones were delivered and
	// are neither acknowledged nor returned yet.
	Ready, Unacked int
}

// Queues lists the queues of a virtual host ("/" is the default one).
func (r Rabbitmqctl) Queues(ctx context.Context, vhost string) ([]QueueState, error) {
	out, err := r.run(ctx, "list_queues", "-p", vhost, "name", "consumers", "messages_ready", "messages_unacknowledged", "--no-table-headers")
	if err != nil {
		return nil, err
	}
	var queues []QueueState
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			continue
		}
		q := QueueState{Name: f[0]}
		if _, err := fmt.Sscan(f[1]+" "+f[2]+" "+f[3], &q.Consumers, &q.Ready, &q.Unacked); err != nil {
			return nil, fmt.Errorf("rabbitmqctl list_queues: line %q: %v", line, err)
		}
		queues = append(queues, q)
	}
	return queues, nil
}
