// Package harness runs the whole system for end-to-end tests the way users
// run it: the pinned daprd binary and the six apps as real processes, on free
// ports, with the repository's own resource files pointed at the test's Redis,
// PostgreSQL and RabbitMQ. Every system gets app ids of its own, so it never
// meets a running `make run` (or another system) through name resolution or
// shared state.
package harness

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Apps are the apps of the system, in start order.
var Apps = []string{"users", "products", "orders", "payments", "notifications", "gateway"}

// Infra says where the backing servers are. Empty fields take their
// ORDERMESH_* environment variable, then the local default.
type Infra struct {
	Redis    string // ORDERMESH_REDIS, host:port
	Postgres string // ORDERMESH_POSTGRES, a libpq connection string
	RabbitMQ string // ORDERMESH_RABBITMQ, an AMQP URL
	// RabbitMQNode is the broker's Erlang node name for rabbitmqctl, which
	// creates each system's virtual host (ORDERMESH_RABBITMQ_NODE; empty:
	// rabbitmqctl's default, the local rabbit@host).
	RabbitMQNode string
	// OwnBroker says the broker serves this system alone (a container of its
	// own): it needs no virtual host to keep other systems out.
	OwnBroker bool
}

// infraFromEnv reports whether the environment names any of the servers.
func infraFromEnv() bool {
	return os.Getenv("ORDERMESH_REDIS") != "" || os.Getenv("ORDERMESH_POSTGRES") != "" || os.Getenv("ORDERMESH_RABBITMQ") != ""
}

func (in Infra) withDefaults() Infra {
	def := func(v, env, fallback string) string {
		if v != "" {
			return v
		}
		if e := os.Getenv(env); e != "" {
			return e
		}
		return fallback
	}
	return Infra{
		Redis:    def(in.Redis, "ORDERMESH_REDIS", "localhost:6379"),
		Postgres: def(in.Postgres, "ORDERMESH_POSTGRES", "host=localhost port=5432 user=ordermesh password=ordermesh dbname=ordermesh sslmode=disable"),
		RabbitMQ: def(in.RabbitMQ, "ORDERMESH_RABBITMQ", "amqp://guest:guest@localhost:5672"),

		RabbitMQNode: def(in.RabbitMQNode, "ORDERMESH_RABBITMQ_NODE", ""),
		OwnBroker:    in.OwnBroker,
	}
}

// Options shape one system.
type Options struct {
	// PubSub is the broker behind orderpubsub: "redis" (default) or "rabbitmq".
	PubSub string
	Infra  Infra
	// Env adds environment variables to an app (by its plain name).
	Env map[string]map[string]string
	// EditResource may change a resource document (a component, the
	// resiliency spec, ...) after the harness pointed it at the test's servers.
	EditResource func(doc map[string]any)
	// ProxyPostgres and ProxyRedis put a Proxy between the system and that
	// server, so a test can take the server away (System.Postgres, .Redis).
	ProxyPostgres bool
	ProxyRedis    bool
	// CountApps puts a Counter between each of these apps (by plain name;
	// every replica) and its own sidecar, so a test can count the requests that reach the
	// app and take it off the network (App.Counter).
	CountApps []string
	// Later names apps (by plain name) Start leaves unstarted, as on a
	// first deployment where a subscriber comes up after the publishers; the
	// test starts them (App.StartSidecar, App.StartApp, App.WaitReady).
	Later []string
	// Insecure runs without Sentry, mTLS, access policies and API tokens,
	// as `make run MTLS=off` does.
	Insecure bool
	// Replicas runs that many instances of an app (by plain name; default
	// 1): each its own app process and sidecar, all with the app's one app
	// id, sharing its state and subscriptions. See System.Replicas for how
	// calls reach them.
	Replicas map[string]int
	// TraceEndpoint is the OTLP/gRPC address (host:port) the sidecars send
	// their spans to. Empty turns tracing off: a test system never sends
	// spans to the collector of a running `make run`.
	TraceEndpoint string
	// SidecarArgs adds daprd flags for an app (by plain name), after the
	// harness's own; a repeated flag takes the last value (the bench's
	// profiling port, a log level to compare).
	SidecarArgs map[string][]string
	// SidecarEnv adds KEY=VALUE environment entries to an app's daprd (by
	// the app's plain name): Go runtime settings such as GOGC.
	SidecarEnv map[string][]string
	// AppBinaries is a directory holding the six apps' binaries (named as
	// the apps) to run instead of the ones built from this checkout: the
	// bench runs the apps of an earlier commit beside the current ones.
	AppBinaries string
}

// System is a running ordermesh.
type System struct {
	t      testing.TB
	n      int64
	ID     string // suffix of every app id of this system
	dir    string
	opts   Options
	apps   map[string]*App   // replica 0 of each app
	reps   map[string][]*App // every replica of each app
	infra  Infra
	daprd  string
	bins   string
	mu     sync.Mutex
	procs  []*Proc
	client *http.Client

	// Postgres and Redis are the proxies in front of those servers, when
	// the options asked for them.
	Postgres *Proxy
	Redis    *Proxy

	// Vhost is the system's RabbitMQ virtual host ("" on Redis Streams or
	// a broker of its own).
	Vhost string

	redisDB int // the Redis database of this system
	// callerReplica is the replica whose Configuration is being written.
	callerReplica int
	directRedis   string // Redis itself, not the proxy

	// Sentry signs the sidecars' certificates; nil when Insecure.
	Sentry *Sentry
	// DaprToken guards every sidecar's API (DAPR_API_TOKEN) and AppToken
	// every app's port (APP_API_TOKEN); both "" when Insecure.
	DaprToken, AppToken string
}

var systems atomic.Int64

// Start builds what is needed (once per test binary), starts every app with
// its sidecar, waits until all are ready, and stops everything when the test
// ends, printing the logs of every process if it failed.
func Start(t testing.TB, opts Options) *System {
	t.Helper()
	s := Prepare(t, opts)
	if !opts.Insecure {
		s.Sentry = StartSentry(t, filepath.Join(s.dir, "sentry"), s.ConfigPath(), s.track)
	}
	for _, name := range Apps {
		if slices.Contains(opts.Later, name) {
			continue
		}
		for _, a := range s.reps[name] {
			a.StartSidecar()
			a.StartApp()
		}
	}
	for _, name := range Apps {
		if slices.Contains(opts.Later, name) {
			continue
		}
		for _, a := range s.reps[name] {
			a.WaitReady()
		}
	}
	return s
}

// Prepare does everything Start does except starting processes: app ids,
// ports, binaries and resource files. A test that starts the system another
// way (the dapr CLI) uses it.
func Prepare(t testing.TB, opts Options) *System {
	t.Helper()
	if opts.PubSub == "" {
		opts.PubSub = "redis"
	}
	// No servers named, by the test or the environment, and a Docker daemon
	// there: the servers run in containers of the system's own.
	if opts.Infra == (Infra{}) && !infraFromEnv() {
		if in, ok := ContainerInfra(t); ok {
			opts.Infra = in
		}
	}
	n := systems.Add(1)
	s := &System{
		t:      t,
		n:      n,
		ID:     fmt.Sprintf("e2e%d%d", os.Getpid()%10000, n),
		dir:    t.TempDir(),
		opts:   opts,
		apps:   map[string]*App{},
		reps:   map[string][]*App{},
		infra:  opts.Infra.withDefaults(),
		daprd:  DaprdPath(t),
		bins:   opts.AppBinaries,
		client: &http.Client{Timeout: 10 * time.Second},
	}
	if s.bins == "" {
		s.bins = appBinaries(t)
	}
	// The broker's virtual host is removed after the processes stop
	// (cleanups run last-registered first).
	s.isolateBroker()
	t.Cleanup(s.stopAll)

	for _, name := range Apps {
		n := max(opts.Replicas[name], 1)
		for r := range n {
			s.reps[name] = append(s.reps[name], &App{Name: name, ID: name + "-" + s.ID, Replica: r, sys: s})
		}
		s.apps[name] = s.reps[name][0]
	}
	if !opts.Insecure {
		s.DaprToken, s.AppToken = newToken(), newToken()
	}
	if opts.ProxyPostgres {
		s.Postgres = NewProxy(t, pgHostPort(s.infra.Postgres))
		s.infra.Postgres = pgWithHostPort(s.infra.Postgres, "127.0.0.1", s.Postgres.Port())
	}
	if opts.ProxyRedis {
		s.Redis = NewProxy(t, s.infra.Redis)
		s.infra.Redis = s.Redis.Addr()
	}
	var all []*App
	for _, name := range Apps {
		all = append(all, s.reps[name]...)
	}
	ports, err := freePorts(len(all) * 5)
	if err != nil {
		t.Fatalf("harness: free ports: %v", err)
	}
	for i, a := range all {
		a.AppPort, a.HTTPPort, a.GRPCPort, a.InternalGRPCPort, a.MetricsPort = ports[i*5], ports[i*5+1], ports[i*5+2], ports[i*5+3], ports[i*5+4]
	}
	for _, name := range opts.CountApps {
		if _, ok := s.apps[name]; !ok {
			t.Fatalf("harness: CountApps: no app %q", name)
		}
		for _, a := range s.reps[name] {
			a.counter = NewCounter(t, "127.0.0.1:"+strconv.Itoa(a.AppPort))
		}
	}
	if err := s.writeResources(); err != nil {
		t.Fatalf("harness: write resources: %v", err)
	}
	s.declareTopology()
	if err := s.writeJWKS(); err != nil {
		t.Fatalf("harness: write the gateway's JWKS: %v", err)
	}
	return s
}

// ResourcesDir holds the system's resource files; ConfigPath its Dapr
// Configuration; BinDir the apps' binaries.
func (s *System) ResourcesDir() string { return filepath.Join(s.dir, "resources") }
func (s *System) ConfigPath() string   { return filepath.Join(s.dir, "config.yaml") }

// ConfigPathFor is the Configuration of the sidecars of replica k: the same
// as ConfigPath, except that its name resolution sends every call to replica
// k mod n of the target (see Replicas).
func (s *System) ConfigPathFor(k int) string {
	if k == 0 {
		return s.ConfigPath()
	}
	return filepath.Join(s.dir, "config-replica"+strconv.Itoa(k)+".yaml")
}
func (s *System) BinDir() string { return s.bins }

// AppEnv is the environment an app of this system runs with, besides what
// Dapr gives it: its peers' app ids and the test's extra variables.
func (s *System) AppEnv(name string) map[string]string {
	env := map[string]string{"SHUTDOWN_TIMEOUT": "5s"}
	if s.DaprToken != "" {
		env["DAPR_API_TOKEN"], env["APP_API_TOKEN"] = s.DaprToken, s.AppToken
	}
	var metrics []string
	for _, peer := range Apps {
		env[strings.ToUpper(peer)+"_APP_ID"] = s.apps[peer].ID
		metrics = append(metrics, peer+"="+s.apps[peer].MetricsURL())
	}
	if name == "gateway" {
		env["SIDECAR_METRICS"] = strings.Join(metrics, ",")
		env["AUTH_JWKS"] = s.JWKSPath() // issuer and audience: the development ones
	}
	for k, v := range s.opts.Env[name] {
		env[k] = v
	}
	return env
}

// Replicas returns every instance of an app, replica 0 first.
//
// Calls reach the replicas through name resolution: every sidecar of
// replica k resolves an app id to that app's replica k mod n (its own
// Configuration file, see ConfigPathFor). So the calls of one caller go to
// one replica, and two callers' calls to two: with two gateways in front
// (Options.Replicas["gateway"] = 2, the test spreading its requests over
// GatewayURLs, as a load balancer would), orders 1 and 2 each reserve
// through their own products replica, racing on the same keys. Why not
// per call: the kubernetes resolver maps an id to one address; daprd keeps
// one HTTP/2 connection per address (so a TCP proxy in between would pin a
// caller to one replica anyway, and cannot see calls through mTLS); and
// mDNS, which does pick per call, multicasts beyond loopback.
func (s *System) Replicas(name string) []*App {
	if _, ok := s.reps[name]; !ok {
		s.t.Fatalf("harness: no app %q", name)
	}
	return append([]*App(nil), s.reps[name]...)
}

// GatewayURLs is the base URL of every gateway replica.
func (s *System) GatewayURLs() []string {
	var urls []string
	for _, a := range s.reps["gateway"] {
		urls = append(urls, a.URL())
	}
	return urls
}

// App returns one app by its plain name ("users"): its replica 0.
func (s *System) App(name string) *App {
	a, ok := s.apps[name]
	if !ok {
		s.t.Fatalf("harness: no app %q", name)
	}
	return a
}

// GatewayURL is the base URL of the public API.
func (s *System) GatewayURL() string { return s.apps["gateway"].URL() }

// Dir is the system's scratch folder (resources, logs).
func (s *System) Dir() string { return s.dir }

func (s *System) track(p *Proc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.procs = append(s.procs, p)
}

// Procs returns every process the system started, running or not.
func (s *System) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// Stop stops every process of the system: apps first, then sidecars.
func (s *System) Stop() { s.stopAll() }

func (s *System) stopAll() {
	procs := s.Procs()
	// Apps first, then sidecars, as an orchestrator drains them.
	for i := len(procs) - 1; i >= 0; i-- {
		if procs[i].Kind == "app" {
			procs[i].Stop()
		}
	}
	for i := len(procs) - 1; i >= 0; i-- {
		procs[i].Stop()
	}
	if s.t.Failed() {
		for _, p := range procs {
			s.t.Logf("---- last lines of %s (%s) ----\n%s", p.Name, p.LogPath, p.Tail(60))
		}
		s.keepLogs(procs)
	}
}

// keepLogs copies every process's whole log into $ORDERMESH_E2E_LOGS/<test>,
// when that is set: the system's own folder goes with the test.
func (s *System) keepLogs(procs []*Proc) {
	root := os.Getenv("ORDERMESH_E2E_LOGS")
	if root == "" {
		return
	}
	dir := filepath.Join(root, strings.NewReplacer("/", "_", " ", "_").Replace(s.t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Logf("harness: keep logs: %v", err)
		return
	}
	for _, p := range procs {
		data, err := os.ReadFile(p.LogPath)
		if err == nil {
			err = os.WriteFile(filepath.Join(dir, filepath.Base(p.LogPath)), data, 0o644)
		}
		if err != nil {
			s.t.Logf("harness: keep log of %s: %v", p.Name, err)
		}
	}
	s.t.Logf("harness: whole logs kept in %s", dir)
}

// App is one app and its sidecar.
type App struct {
	Name             string // plain name: "users"
	ID               string // Dapr app id in this system: "users-e2e…"
	Replica          int    // 0 for the first instance of the app
	AppPort          int
	HTTPPort         int // sidecar HTTP API
	GRPCPort         int // sidecar gRPC API
	InternalGRPCPort int
	MetricsPort      int
	// Env overrides the app's environment for this instance's next
	// StartApp (a test arms a fault with it, and clears it to restart
	// the app clean).
	Env        map[string]string
	sys        *System
	app, daprd *Proc
	counter    *Counter
}

// URL is the app's own HTTP address, bypassing its sidecar.
func (a *App) URL() string { return "http://127.0.0.1:" + strconv.Itoa(a.AppPort) }

// SidecarURL is the base URL of the app's sidecar HTTP API.
func (a *App) SidecarURL() string { return "http://127.0.0.1:" + strconv.Itoa(a.HTTPPort) }

// MetricsURL is the sidecar's Prometheus endpoint.
func (a *App) MetricsURL() string {
	return "http://127.0.0.1:" + strconv.Itoa(a.MetricsPort) + "/metrics"
}

// Counter is the Counter between the app and its sidecar, or nil when the
// system's Options.CountApps does not name the app.
func (a *App) Counter() *Counter { return a.counter }

// sidecarAppPort is where the sidecar reaches the app: its Counter, if any.
func (a *App) sidecarAppPort() int {
	if a.counter != nil {
		return a.counter.Port()
	}
	return a.AppPort
}

// System is the system the app belongs to.
func (a *App) System() *System { return a.sys }

// AppProc and SidecarProc are the current processes.
func (a *App) AppProc() *Proc     { return a.app }
func (a *App) SidecarProc() *Proc { return a.daprd }

// StartSidecar starts the app's daprd.
func (a *App) StartSidecar() {
	s := a.sys
	args := []string{
		"--app-id", a.ID,
		"--app-port", strconv.Itoa(a.sidecarAppPort()),
		"--app-protocol", "http",
		"--dapr-http-port", strconv.Itoa(a.HTTPPort),
		"--dapr-grpc-port", strconv.Itoa(a.GRPCPort),
		"--dapr-internal-grpc-port", strconv.Itoa(a.InternalGRPCPort),
		"--metrics-port", strconv.Itoa(a.MetricsPort),
		"--dapr-listen-addresses", "127.0.0.1",
		"--resources-path", s.ResourcesDir(),
		"--config", s.ConfigPathFor(a.Replica),
		"--placement-host-address", "",
		"--scheduler-host-address", "",
		"--enable-app-health-check",
		"--app-health-check-path", "/healthz",
		"--app-health-probe-interval", "1",
		"--log-level", logLevel(),
	}
	args = append(args, s.opts.SidecarArgs[a.Name]...)
	var env []string
	if s.Sentry != nil {
		args = append(args, "--enable-mtls", "--sentry-address", s.Sentry.Address())
		env = append(env, "DAPR_TRUST_ANCHORS="+s.Sentry.TrustAnchors(s.t))
	}
	if s.DaprToken != "" {
		env = append(env, "DAPR_API_TOKEN="+s.DaprToken, "APP_API_TOKEN="+s.AppToken)
	}
	env = append(env, s.opts.SidecarEnv[a.Name]...)
	a.daprd = s.start(a.procName()+"-daprd", "sidecar", s.daprd, args, env)
}

// StartApp starts the app process.
func (a *App) StartApp() {
	s := a.sys
	env := []string{
		"APP_ID=" + a.ID,
		"APP_PORT=" + strconv.Itoa(a.AppPort),
		"DAPR_HTTP_PORT=" + strconv.Itoa(a.HTTPPort),
		"DAPR_GRPC_PORT=" + strconv.Itoa(a.GRPCPort),
	}
	for k, v := range s.AppEnv(a.Name) {
		if _, ok := a.Env[k]; !ok {
			env = append(env, k+"="+v)
		}
	}
	for k, v := range a.Env {
		if v != "" {
			env = append(env, k+"="+v)
		}
	}
	a.app = s.start(a.procName(), "app", filepath.Join(s.bins, a.Name), nil, env)
}

// procName names the app's processes: "orders", then "orders-2", ...
func (a *App) procName() string {
	if a.Replica == 0 {
		return a.Name
	}
	return a.Name + "-" + strconv.Itoa(a.Replica+1)
}

// StopApp stops the app process (its sidecar keeps running), as when a
// service instance goes down.
func (a *App) StopApp() { a.app.Stop() }

// StopSidecar stops the app's daprd.
func (a *App) StopSidecar() { a.daprd.Stop() }

// WaitReady waits until the app answers /readyz with 200 and its sidecar
// reports healthy.
func (a *App) WaitReady() {
	a.sys.t.Helper()
	a.WaitReadyWithin(60 * time.Second)
}

// WaitReadyWithin is WaitReady with an explicit deadline.
func (a *App) WaitReadyWithin(d time.Duration) {
	t := a.sys.t
	t.Helper()
	end := time.Now().Add(d)
	var last string
	for time.Now().Before(end) {
		for _, p := range []*Proc{a.app, a.daprd} {
			if p != nil && p.Exited() {
				t.Fatalf("harness: %s exited while starting: %v\n%s", p.Name, p.ExitErr(), p.Tail(40))
			}
		}
		last = a.readiness()
		if last == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("harness: %s not ready after %s: %s\n--- app log ---\n%s\n--- daprd log ---\n%s", a.ID, d, last, a.app.Tail(30), a.daprd.Tail(30))
}

func (a *App) readiness() string {
	res, err := a.sys.client.Get(a.URL() + "/readyz")
	if err != nil {
		return err.Error()
	}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 4096))
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "app /readyz: " + res.Status + ": " + string(body)
	}
	res, err = a.sys.client.Get(a.SidecarURL() + "/v1.0/healthz")
	if err != nil {
		return err.Error()
	}
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return "sidecar /v1.0/healthz: " + res.Status
	}
	return ""
}

func (s *System) start(name, kind, bin string, args, env []string) *Proc {
	s.t.Helper()
	p, err := startProc(name, kind, bin, args, env, filepath.Join(s.dir, "logs"))
	if err != nil {
		s.t.Fatalf("harness: start %s: %v", name, err)
	}
	s.track(p)
	return p
}

// RepoRoot is the folder holding the root go.mod.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "dapr.yaml")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("harness: repository root not found above %s", file)
		}
		dir = parent
	}
}

// DaprdPath is the daprd the tests run: $ORDERMESH_DAPRD, else the pinned
// build in .dapr/bin. It is never built here: `make e2e` builds it first.
func DaprdPath(t testing.TB) string {
	t.Helper()
	p := os.Getenv("ORDERMESH_DAPRD")
	if p == "" {
		p = filepath.Join(RepoRoot(t), ".dapr", "bin", "daprd")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("harness: daprd not found at %s; run `make toolchain` (or set ORDERMESH_DAPRD)", p)
	}
	return p
}

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// appBinaries builds the six apps once per test binary into a temp folder.
func appBinaries(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root := RepoRoot(t)
		buildDir, buildErr = os.MkdirTemp("", "ordermesh-e2e-bin-")
		if buildErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		args := []string{"build", "-o", buildDir + "/"}
		for _, a := range Apps {
			args = append(args, "./apps/"+a)
		}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatalf("harness: %v", buildErr)
	}
	return buildDir
}

// Cleanup removes what the harness built; call it from TestMain.
func Cleanup() {
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
}

// pgHostPort reads host:port from a libpq key=value connection string.
func pgHostPort(conn string) string {
	host, port := "localhost", "5432"
	for _, kv := range strings.Fields(conn) {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		}
	}
	return host + ":" + port
}

// pgWithHostPort returns conn with its host and port replaced.
func pgWithHostPort(conn, host, port string) string {
	var out []string
	for _, kv := range strings.Fields(conn) {
		k, _, _ := strings.Cut(kv, "=")
		if k != "host" && k != "port" {
			out = append(out, kv)
		}
	}
	return strings.Join(append(out, "host="+host, "port="+port), " ")
}

// logLevel is the sidecars' log level: info, or $ORDERMESH_DAPRD_LOG_LEVEL.
func logLevel() string {
	if l := os.Getenv("ORDERMESH_DAPRD_LOG_LEVEL"); l != "" {
		return l
	}
	return "info"
}
