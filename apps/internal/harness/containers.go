package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
	"github.com/testcontainers/testcontainers-go/wait"
)

// ContainerImages are the images ContainerInfra runs: the stand-ins `make
// images` builds from Debian's packages, unless REDIS_IMAGE, POSTGRES_IMAGE
// or RABBITMQ_IMAGE (the variables compose.yaml reads too) name others, such
// as the official redis:7, postgres:15 and rabbitmq:3-management.
type ContainerImages struct {
	Redis, Postgres, RabbitMQ string
}

// DefaultContainerImages reads the images from the environment.
func DefaultContainerImages() ContainerImages {
	def := func(env, fallback string) string {
		if v := os.Getenv(env); v != "" {
			return v
		}
		return fallback
	}
	return ContainerImages{
		Redis:    def("REDIS_IMAGE", "ordermesh/redis:local"),
		Postgres: def("POSTGRES_IMAGE", "ordermesh/postgres:local"),
		RabbitMQ: def("RABBITMQ_IMAGE", "ordermesh/rabbitmq:local"),
	}
}

// The servers' durability settings, the same as compose.yaml's: Redis logs
// every write to its append-only file and fsyncs it every second (a crash
// loses at most the last second; snapshots alone lose minutes), and
// PostgreSQL fsyncs each commit before answering it.
var (
	redisCommand    = []string{"redis-server", "--protected-mode", "no", "--appendonly", "yes", "--appendfsync", "everysec"}
	postgresCommand = []string{"postgres", "-c", "fsync=on", "-c", "synchronous_commit=on"}
)

// The role, password and database compose.yaml and `make run` use.
const (
	pgUser     = "ordermesh"
	pgPassword = "ordermesh"
	pgDatabase = "ordermesh"
)

// ContainerInfra starts Redis, PostgreSQL and RabbitMQ in containers with
// testcontainers-go, waits until each accepts connections, and returns their
// addresses on loopback, for Options.Infra. The containers are removed when
// the test ends. It reports false, starting nothing, when no Docker daemon
// answers; a daemon without the images fails the test (`make images` builds
// them: nothing can be pulled here).
//
// Ryuk, testcontainers' reaper container, is turned off unless
// TESTCONTAINERS_RYUK_DISABLED says otherwise: its image cannot be pulled
// either, and t.Cleanup removes the containers. A test binary killed before
// its cleanups leaves them running; they carry the label ordermesh.test.
// TESTCONTAINERS_HOST_OVERRIDE defaults to 127.0.0.1, where the ports are.
func ContainerInfra(t testing.TB) (Infra, bool) {
	t.Helper()
	for name, value := range map[string]string{
		"TESTCONTAINERS_RYUK_DISABLED": "true",
		// The ports are published on loopback. Left to itself,
		// testcontainers dials the machine's default gateway instead
		// whenever it finds /.dockerenv (this process looks containerised).
		"TESTCONTAINERS_HOST_OVERRIDE": "127.0.0.1",
	} {
		if _, set := os.LookupEnv(name); !set {
			os.Setenv(name, value)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	images := DefaultContainerImages()
	if err := dockerReady(ctx, images); errors.Is(err, errNoDocker) {
		t.Logf("harness: %v", err)
		return Infra{}, false
	} else if err != nil {
		t.Fatalf("harness: %v", err)
	}

	logger := testcontainers.WithLogger(tclog.TestLogger(t))
	labels := testcontainers.WithLabels(map[string]string{"ordermesh.test": t.Name()})
	servers := []struct {
		name, image, port string
		run               func() (testcontainers.Container, error)
		address           func(hostPort string) string
	}{
		{
			name: "redis", image: images.Redis, port: "6379/tcp",
			run: func() (testcontainers.Container, error) {
				return tcredis.Run(ctx, images.Redis, logger, labels, loopbackPorts("6379/tcp"),
					// Durable as compose and `make run` run it (redisCommand).
					testcontainers.WithCmd(redisCommand...))
			},
			address: func(hp string) string { return hp },
		},
		{
			name: "postgres", image: images.Postgres, port: "5432/tcp",
			run: func() (testcontainers.Container, error) {
				return tcpostgres.Run(ctx, images.Postgres, logger, labels, loopbackPorts("5432/tcp"),
					tcpostgres.WithUsername(pgUser), tcpostgres.WithPassword(pgPassword), tcpostgres.WithDatabase(pgDatabase),
					// The module's default command turns fsync off; the
					// system's promises need a commit to survive a crash.
					testcontainers.WithCmd(postgresCommand...),
					// Over TCP: while the official image initialises, its
					// server listens on the Unix socket only.
					testcontainers.WithWaitStrategy(
						wait.ForExec([]string{"pg_isready", "-h", "127.0.0.1", "-U", pgUser, "-d", pgDatabase}).
							WithStartupTimeout(time.Minute),
						wait.ForListeningPort("5432/tcp").WithStartupTimeout(time.Minute),
					))
			},
			address: func(hp string) string {
				host, port, _ := net.SplitHostPort(hp)
				return fmt.Sprintf("host=%s port=%s user=%s password=%s dbname=%s sslmode=disable",
					host, port, pgUser, pgPassword, pgDatabase)
			},
		},
		{
			// testcontainers' rabbitmq module has no release that builds with
			// testcontainers-go v0.45.0 from the module proxy: a generic one.
			name: "rabbitmq", image: images.RabbitMQ, port: "5672/tcp",
			run: func() (testcontainers.Container, error) {
				return testcontainers.Run(ctx, images.RabbitMQ, logger, labels,
					testcontainers.WithExposedPorts("5672/tcp"), loopbackPorts("5672/tcp"),
					// RabbitMQ names its node after the host name.
					testcontainers.WithConfigModifier(func(cfg *container.Config) { cfg.Hostname = "rabbitmq" }),
					testcontainers.WithWaitStrategy(
						wait.ForLog("Server startup complete").WithStartupTimeout(2*time.Minute),
						wait.ForListeningPort("5672/tcp").WithStartupTimeout(2*time.Minute),
					))
			},
			address: func(hp string) string { return "amqp://guest:guest@" + hp },
		},
	}

	// The three start concurrently: RabbitMQ alone takes several seconds.
	containers := make([]testcontainers.Container, len(servers))
	addrs := make([]string, len(servers))
	errs := make([]error, len(servers))
	var wg sync.WaitGroup
	for i, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := s.run()
			containers[i] = c
			if err == nil {
				var hp string
				if hp, err = loopbackAddr(ctx, c, s.port); err == nil {
					addrs[i] = s.address(hp)
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("%s (%s): %w", s.name, s.image, err)
			}
		}()
	}
	wg.Wait()
	// Registered on the test's goroutine, for every container that was
	// created, also when another one failed to start.
	for _, c := range containers {
		testcontainers.CleanupContainer(t, c)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("harness: start containers: %v", err)
	}
	return Infra{Redis: addrs[0], Postgres: addrs[1], RabbitMQ: addrs[2], OwnBroker: true}, true
}

var errNoDocker = errors.New("no Docker daemon answers")

// dockerReady checks that a daemon answers and has every image.
func dockerReady(ctx context.Context, images ContainerImages) error {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoDocker, err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return fmt.Errorf("%w: %v", errNoDocker, err)
	}
	var missing []error
	for _, img := range []string{images.Redis, images.Postgres, images.RabbitMQ} {
		if _, err := cli.ImageInspect(ctx, img); err != nil {
			missing = append(missing, fmt.Errorf("image %s: %w", img, err))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w (`make images` builds the ordermesh/* images; no image can be pulled here)", errors.Join(missing...))
	}
	return nil
}

// loopbackPorts publishes the container ports on 127.0.0.1 only (a free host
// port each), not on every interface of the machine.
func loopbackPorts(ports ...string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = network.PortMap{}
		}
		for _, p := range ports {
			hc.PortBindings[network.MustParsePort(p)] = []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1")}}
		}
	})
}

// loopbackAddr is the host:port where a container port is published.
func loopbackAddr(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	p, err := c.MappedPort(ctx, port)
	if err != nil {
		return "", fmt.Errorf("mapped port %s: %w", port, err)
	}
	return net.JoinHostPort("127.0.0.1", p.Port()), nil
}
