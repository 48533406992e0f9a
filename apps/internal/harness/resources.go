package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// writeResources copies the repository's resource files into the system's
// folder, changed only where a test system must differ from `make run`: the
// servers' addresses, a Redis database of its own, and its app ids.
func (s *System) writeResources() error {
	root := RepoRoot(s.t)
	s.directRedis = s.opts.Infra.withDefaults().Redis
	db, err := claimRedisDB(s.directRedis)
	if err != nil {
		return fmt.Errorf("claim a redis database at %s: %w", s.directRedis, err)
	}
	s.redisDB = db
	s.t.Cleanup(func() { _, _ = redisDo(s.directRedis, 0, "DEL", dbClaimKey(db)) })
	if err := flushRedisDB(s.directRedis, db); err != nil {
		return fmt.Errorf("prepare redis db %d at %s: %w", db, s.directRedis, err)
	}
	out := filepath.Join(s.dir, "resources")
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	dirs := []string{
		filepath.Join(root, "components", "state"),
		filepath.Join(root, "components", "pubsub", s.opts.PubSub),
		filepath.Join(root, "dapr", "resources"),
	}
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
		if err != nil {
			return err
		}
		if len(files) == 0 {
			return fmt.Errorf("no resources in %s", dir)
		}
		for _, f := range files {
			data, err := s.rewrite(f, db)
			if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if err := os.WriteFile(filepath.Join(out, filepath.Base(f)), data, 0o644); err != nil {
				return err
			}
		}
	}
	replicas := 1
	for _, reps := range s.reps {
		replicas = max(replicas, len(reps))
	}
	for k := range replicas {
		s.callerReplica = k
		data, err := s.rewrite(filepath.Join(root, "dapr", "config.yaml"), db)
		if err != nil {
			return err
		}
		if err := os.WriteFile(s.ConfigPathFor(k), data, 0o644); err != nil {
			return err
		}
	}
	s.callerReplica = 0
	return nil
}

// rewrite applies the system's changes to every document of a YAML file.
func (s *System) rewrite(path string, redisDB int) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, err
		}
		if doc == nil {
			continue
		}
		s.rewriteDoc(doc, redisDB)
		if s.opts.EditResource != nil {
			s.opts.EditResource(doc)
		}
		if err := enc.Encode(doc); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (s *System) rewriteDoc(doc map[string]any, redisDB int) {
	if scopes, ok := doc["scopes"].([]any); ok {
		for i, sc := range scopes {
			scopes[i] = s.appID(fmt.Sprint(sc))
		}
	}
	spec, _ := doc["spec"].(map[string]any)
	switch doc["kind"] {
	case "Component":
		switch spec["type"] {
		case "state.redis", "pubsub.redis":
			SetMetadata(doc, "redisHost", s.infra.Redis)
			SetMetadata(doc, "redisDB", strconv.Itoa(redisDB))
		case "state.postgresql":
			SetMetadata(doc, "connectionString", s.infra.Postgres)
		case "pubsub.rabbitmq":
			SetMetadata(doc, "connectionString", s.infra.RabbitMQ)
		}
	case "Configuration":
		if s.opts.Insecure {
			delete(spec, "mtls")
			delete(spec, "accessControl")
		} else if acl, ok := spec["accessControl"].(map[string]any); ok {
			policies, _ := acl["policies"].([]any)
			for _, p := range policies {
				if m, ok := p.(map[string]any); ok {
					m["appId"] = s.appID(fmt.Sprint(m["appId"]))
				}
			}
		}
		if tracing, ok := spec["tracing"].(map[string]any); ok {
			if otel, ok := tracing["otel"].(map[string]any); ok && s.opts.TraceEndpoint != "" {
				otel["endpointAddress"] = s.opts.TraceEndpoint
			} else {
				tracing["samplingRate"] = "0"
				delete(tracing, "otel")
			}
		}
		// Sidecars find each other through a fixed table instead of mDNS:
		// nothing leaves loopback, nothing is multicast, and a restarted
		// sidecar is found at once on its old port.
		spec["nameResolution"] = map[string]any{
			"component":     "kubernetes",
			"configuration": map[string]any{"template": s.addressTemplate()},
		}
	case "Resiliency":
		targets, _ := spec["targets"].(map[string]any)
		if apps, ok := targets["apps"].(map[string]any); ok {
			renamed := map[string]any{}
			for id, v := range apps {
				renamed[s.appID(id)] = v
			}
			targets["apps"] = renamed
		}
	}
}

// appID maps an app's plain name to its id in this system.
func (s *System) appID(name string) string {
	if a, ok := s.apps[name]; ok {
		return a.ID
	}
	return name
}

// SetMetadata sets (or adds) a component's spec.metadata entry.
func SetMetadata(doc map[string]any, name, value string) {
	spec, _ := doc["spec"].(map[string]any)
	if spec == nil {
		return
	}
	items, _ := spec["metadata"].([]any)
	for _, it := range items {
		if m, ok := it.(map[string]any); ok && m["name"] == name {
			m["value"] = value
			return
		}
	}
	spec["metadata"] = append(items, map[string]any{"name": name, "value": value})
}

// claimRedisDB finds a Redis database (1-15) no other running system uses
// and claims it, with a key in database 0 holding this process's pid: test
// binaries running at once never flush each other's data. A claim whose
// process is gone, or that expired, is taken over.
func claimRedisDB(addr string) (int, error) {
	me := strconv.Itoa(os.Getpid())
	for i := range 15 {
		db := 1 + (os.Getpid()+int(systems.Load())+i)%15
		key := dbClaimKey(db)
		reply, err := redisDo(addr, 0, "SET", key, me, "NX", "EX", "3600")
		if err != nil {
			return 0, err
		}
		if reply == "+OK" {
			return db, nil
		}
		holder, err := redisDo(addr, 0, "GET", key)
		if err != nil {
			return 0, err
		}
		if pid, err := strconv.Atoi(holder); err == nil && pid != os.Getpid() && !Alive(pid) {
			if reply, err := redisDo(addr, 0, "SET", key, me, "XX", "EX", "3600"); err == nil && reply == "+OK" {
				return db, nil
			}
		}
	}
	return 0, errors.New("all 15 databases are claimed by running systems")
}

func dbClaimKey(db int) string { return "ordermesh-e2e-db-" + strconv.Itoa(db) }

// flushRedisDB empties one Redis database.
func flushRedisDB(addr string, db int) error {
	_, err := redisDo(addr, db, "FLUSHDB")
	return err
}

// RedisDo runs one command on the system's Redis database and returns the
// first line of the reply ("+OK", ":3", ...), for checks such as XLEN.
func (s *System) RedisDo(args ...string) (string, error) {
	return redisDo(s.directRedis, s.redisDB, args...)
}

// redisDo speaks RESP directly so the tests need no Redis client library.
func redisDo(addr string, db int, args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(conn)
	var line string
	for _, cmd := range [][]string{{"SELECT", strconv.Itoa(db)}, args} {
		var b strings.Builder
		fmt.Fprintf(&b, "*%d\r\n", len(cmd))
		for _, arg := range cmd {
			fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(arg), arg)
		}
		if _, err := io.WriteString(conn, b.String()); err != nil {
			return "", err
		}
		if line, err = r.ReadString('\n'); err != nil {
			return "", err
		}
		if strings.HasPrefix(line, "-") {
			return "", fmt.Errorf("redis %s: %s", cmd[0], strings.TrimSpace(line))
		}
	}
	// An array ("*4" then its elements): answer its first element, such as
	// the count XPENDING's summary starts with.
	if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "*"))); strings.HasPrefix(line, "*") && err == nil && n > 0 {
		if line, err = r.ReadString('\n'); err != nil {
			return "", err
		}
	}
	// A bulk string ("$5" then the value): answer the value ("" for nil).
	if n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "$"))); strings.HasPrefix(line, "$") && err == nil {
		if n < 0 {
			return "", nil
		}
		value, err := r.ReadString('\n')
		return strings.TrimSpace(value), err
	}
	return strings.TrimSpace(line), nil
}

// addressTemplate maps each app id of the system to its sidecar's internal
// gRPC address, in the template language of Dapr's kubernetes name resolver:
// for the sidecars of replica s.callerReplica, to replica callerReplica mod n
// of the target.
func (s *System) addressTemplate() string {
	var b strings.Builder
	for i, name := range Apps {
		reps := s.reps[name]
		a := reps[s.callerReplica%len(reps)]
		if i > 0 {
			b.WriteString("{{else if")
		} else {
			b.WriteString("{{if")
		}
		fmt.Fprintf(&b, " eq .ID %q}}127.0.0.1:%d", a.ID, a.InternalGRPCPort)
	}
	b.WriteString("{{end}}")
	return b.String()
}
