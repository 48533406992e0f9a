package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Server is a server process of one test alone (Redis, PostgreSQL or a
// RabbitMQ node) on its own port and data folder, so a test may kill and
// restart it without touching the servers other tests and engineers share.
// Its data survives a restart: it lives in the folder, not the process.
type Server struct {
	Name string
	Port int
	t    testing.TB
	dir  string
	// start starts the process; ready reports nil once it serves.
	start func() (*Proc, error)
	ready func() error
	// stopSignal stops it gracefully.
	stopSignal syscall.Signal
	proc       *Proc
	node       string // a RabbitMQ node's Erlang name
}

// Pid is the server's current process id.
func (s *Server) Pid() int { return s.proc.Pid() }

// Proc is the server's current process.
func (s *Server) Proc() *Proc { return s.proc }

// Start starts the server and waits until it serves (up to 2 minutes).
func (s *Server) Start() {
	s.t.Helper()
	p, err := s.start()
	if err != nil {
		s.t.Fatalf("harness: start %s: %v", s.Name, err)
	}
	s.proc = p
	end := time.Now().Add(2 * time.Minute)
	for {
		err := s.ready()
		if err == nil {
			return
		}
		if p.Exited() {
			s.t.Fatalf("harness: %s exited while starting: %v\n%s", s.Name, p.ExitErr(), p.Tail(30))
		}
		if time.Now().After(end) {
			s.t.Fatalf("harness: %s not ready after 2m: %v\n%s", s.Name, err, p.Tail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Kill ends the server with SIGKILL, as a crash or the OOM killer would,
// and waits for it (and its process group) to be gone.
func (s *Server) Kill() { s.signalAndWait(syscall.SIGKILL) }

// Stop stops the server gracefully and waits for it.
func (s *Server) Stop() { s.signalAndWait(s.stopSignal) }

func (s *Server) signalAndWait(sig syscall.Signal) {
	p := s.proc
	if p == nil || p.Exited() {
		return
	}
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		s.t.Logf("harness: %s did not stop within 30s of %s; killing it", s.Name, sig)
	}
	// Whatever it spawned (PostgreSQL's backends, Erlang's helpers).
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
	<-p.done
	// ...and gone: a PostgreSQL backend still attached to the shared memory
	// stops the next postmaster from starting.
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(-p.Pid(), 0) != nil {
			return
		}
	}
	s.t.Errorf("harness: processes of %s still there 30s after SIGKILL", s.Name)
}

// StartRedis starts a private redis-server, durable as compose and `make run`
// run it (append-only file, fsync every second), and stops it when the test
// ends.
func StartRedis(t testing.TB) *Server {
	t.Helper()
	dir := serverDir(t, "redis", "")
	port := mustFreePort(t)
	s := &Server{Name: "redis", Port: port, t: t, dir: dir, stopSignal: syscall.SIGTERM}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	s.start = func() (*Proc, error) {
		return startProc("redis", "server", "redis-server", []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "",
			"--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "no",
		}, nil, filepath.Join(dir, "logs"))
	}
	s.ready = func() error {
		reply, err := redisDo(addr, 0, "PING")
		if err == nil && reply != "+PONG" {
			err = fmt.Errorf("PING: %s", reply)
		}
		return err
	}
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port of a Redis server.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.Port) }

// StartPostgres starts a private PostgreSQL cluster (initdb in a folder of
// its own) with the role, password and database the project uses, fsync and
// synchronous commit on, and stops it when the test ends. As root it runs
// as the postgres user: PostgreSQL refuses to run as root.
func StartPostgres(t testing.TB) *Server {
	t.Helper()
	bin, err := postgresBin()
	if err != nil {
		t.Skipf("harness: no PostgreSQL server binaries: %v", err)
	}
	dir := serverDir(t, "postgres", "postgres")
	data := filepath.Join(dir, "data")
	asPG := runAs(t, "postgres")
	pwfile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwfile, []byte(pgPassword+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", pgUser, "--pwfile", pwfile,
		"-E", "UTF8", "--locale", "C", "--auth-local", "trust", "--auth-host", "scram-sha-256")
	asPG(initdb)
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("harness: initdb: %v\n%s", err, out)
	}
	port := mustFreePort(t)
	s := &Server{Name: "postgres", Port: port, t: t, dir: dir, stopSignal: syscall.SIGINT}
	s.start = func() (*Proc, error) {
		return startProc("postgres", "server", filepath.Join(bin, "postgres"), []string{
			"-D", data, "-p", strconv.Itoa(port), "-c", "listen_addresses=127.0.0.1",
			"-c", "unix_socket_directories=" + dir, "-c", "fsync=on", "-c", "synchronous_commit=on",
			"-c", "max_connections=200",
		}, nil, filepath.Join(dir, "logs"), asPG)
	}
	isReady := filepath.Join(bin, "pg_isready")
	s.ready = func() error {
		out, err := exec.Command(isReady, "-q", "-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", pgUser, "-d", "postgres").CombinedOutput()
		if err != nil {
			return fmt.Errorf("pg_isready: %v %s", err, out)
		}
		return nil
	}
	s.Start()
	t.Cleanup(s.Stop)
	create := exec.Command(filepath.Join(bin, "createdb"), "-h", dir, "-p", strconv.Itoa(port), "-U", pgUser, pgDatabase)
	asPG(create)
	if out, err := create.CombinedOutput(); err != nil {
		t.Fatalf("harness: createdb: %v\n%s", err, out)
	}
	return s
}

// PostgresConn is the libpq connection string of a PostgreSQL server.
func (s *Server) PostgresConn() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", s.Port, pgUser, pgPassword, pgDatabase)
}

// StartRabbitMQ starts a private RabbitMQ node (a node name, ports and data
// folder of its own, no plugins) and stops it when the test ends. As root it
// runs as the rabbitmq user, whose Erlang cookie rabbitmqctl uses.
func StartRabbitMQ(t testing.TB) *Server {
	t.Helper()
	const script = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	if _, err := os.Stat(script); err != nil {
		t.Skipf("harness: no RabbitMQ server: %v", err)
	}
	dir := serverDir(t, "rabbitmq", "rabbitmq")
	ports, err := freePorts(2)
	if err != nil {
		t.Fatal(err)
	}
	port, dist := ports[0], ports[1]
	node := fmt.Sprintf("omtest%d@localhost", port)
	if err := os.WriteFile(filepath.Join(dir, "enabled_plugins"), []byte("[].\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &Server{Name: "rabbitmq", Port: port, t: t, dir: dir, stopSignal: syscall.SIGTERM}
	// As root it runs as the rabbitmq user, with that user's Erlang cookie
	// (so rabbitmqctl reaches it); otherwise as this user, with a cookie of
	// its own in its folder.
	home := dir
	if os.Geteuid() == 0 {
		home = "/var/lib/rabbitmq"
	}
	env := []string{
		"HOME=" + home,
		"RUNNING_UNDER_SYSTEMD=1", // the script execs the VM: the pid is the broker's
		"RABBITMQ_NODENAME=" + node,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(port),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(dist),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(dir, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(dir, "log"),
		"RABBITMQ_LOGS=-",
		"RABBITMQ_PID_FILE=" + filepath.Join(dir, "pid"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(dir, "enabled_plugins"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(dir, "rabbitmq"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(dir, "advanced.config"),
	}
	asRabbit := runAs(t, "rabbitmq")
	s.start = func() (*Proc, error) {
		return startProc("rabbitmq", "server", script, nil, env, filepath.Join(dir, "logs"), asRabbit,
			func(c *exec.Cmd) { c.Dir = dir })
	}
	url := s.AMQPURL()
	s.ready = func() error {
		conn, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(2 * time.Second)})
		if err != nil {
			return err
		}
		return conn.Close()
	}
	s.node = node
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// AMQPURL is the AMQP URL of a RabbitMQ node (its default virtual host).
func (s *Server) AMQPURL() string { return "amqp://guest:guest@127.0.0.1:" + strconv.Itoa(s.Port) }

// Node is a RabbitMQ node's Erlang name, for rabbitmqctl -n.
func (s *Server) Node() string { return s.node }

// PrivateInfra starts a Redis and a PostgreSQL of the test's own, and a
// RabbitMQ node when pubsub is "rabbitmq".
func PrivateInfra(t testing.TB, pubsub string) (Infra, map[string]*Server) {
	t.Helper()
	servers := map[string]*Server{"redis": StartRedis(t), "postgres": StartPostgres(t)}
	in := Infra{Redis: servers["redis"].Addr(), Postgres: servers["postgres"].PostgresConn(), OwnBroker: true}
	if pubsub == "rabbitmq" {
		servers["rabbitmq"] = StartRabbitMQ(t)
		in.RabbitMQ, in.RabbitMQNode = servers["rabbitmq"].AMQPURL(), servers["rabbitmq"].Node()
	}
	return in, servers
}

// serverDir makes a data folder in the system's temp folder that owner (a
// system user, "" for this one) may use: t.TempDir is private to root.
func serverDir(t testing.TB, name, owner string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ordermesh-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if owner != "" && os.Geteuid() == 0 {
		u, err := user.Lookup(owner)
		if err != nil {
			t.Skipf("harness: no %s user: %v", owner, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// runAs makes a command run as a system user when this process is root.
func runAs(t testing.TB, name string) func(*exec.Cmd) {
	t.Helper()
	if os.Geteuid() != 0 {
		return func(*exec.Cmd) {}
	}
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("harness: no %s user: %v", name, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return func(c *exec.Cmd) {
		if c.SysProcAttr == nil {
			c.SysProcAttr = &syscall.SysProcAttr{}
		}
		c.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
}

// postgresBin finds the folder of PostgreSQL's server binaries.
func postgresBin() (string, error) {
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			dir := strings.TrimSpace(string(out))
			if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
				return dir, nil
			}
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/postgres")
	if len(matches) == 0 {
		return "", errors.New("neither pg_config nor /usr/lib/postgresql/*/bin/postgres")
	}
	return filepath.Dir(matches[len(matches)-1]), nil
}

func mustFreePort(t testing.TB) int {
	t.Helper()
	ports, err := freePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return ports[0]
}

// Query runs one SQL statement on a PostgreSQL server with psql and returns
// its rows, one a line, fields separated by a tab.
func (s *Server) Query(sql string) (string, error) {
	bin, err := postgresBin()
	if err != nil {
		return "", err
	}
	cmd := exec.Command(filepath.Join(bin, "psql"), "-X", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1",
		"-h", s.dir, "-p", strconv.Itoa(s.Port), "-U", pgUser, "-d", pgDatabase, "-c", sql)
	runAs(s.t, "postgres")(cmd)
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		return "", fmt.Errorf("psql: %v: %s", err, stderr)
	}
	return string(out), nil
}
