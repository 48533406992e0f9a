package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// Proc is one process whose CPU a bench step counts.
type Proc struct {
	Name  string // "orders-daprd", "redis", "postgres (our backends)"
	Group string // GroupApp, GroupSidecar, GroupServer, GroupControl or GroupLoad
	Pid   int
}

// The groups a step's CPU is summed by.
const (
	GroupApp     = "app"
	GroupSidecar = "sidecar"
	GroupServer  = "server"  // Redis, PostgreSQL, RabbitMQ
	GroupControl = "control" // Sentry
	GroupLoad    = "load"    // the load generator: this test process
)

// Memory is a process's resident memory now and at its peak, in MB.
func Memory(pid int) (rss, peak float64) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			peak = kb / 1024
		}
	}
	return rss, peak
}

// Servers finds the processes of the backing servers on this machine: the
// Redis server listening on redisPort, RabbitMQ's Erlang processes, and of
// PostgreSQL its shared processes (postmaster, WAL writer, checkpointer, ...)
// plus only the backends serving a connection from one of clientPids. Other
// clients' backends are left out; Redis and RabbitMQ are counted whole, so
// whatever else uses them at the same time is counted too.
func Servers(redisPort string, clientPids []int) []Proc {
	ours := clientPorts(clientPids)
	var out []Proc
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, dir := range dirs {
		pid, err := strconv.Atoi(filepath.Base(dir))
		if err != nil {
			continue
		}
		comm, _ := os.ReadFile(dir + "/comm")
		cmdline, _ := os.ReadFile(dir + "/cmdline")
		args := strings.TrimSpace(strings.ReplaceAll(string(cmdline), "\x00", " "))
		switch strings.TrimSpace(string(comm)) {
		case "redis-server":
			if redisPort == "" || strings.Contains(args, ":"+redisPort) {
				out = append(out, Proc{Name: "redis", Group: GroupServer, Pid: pid})
			}
		case "postgres":
			if name, ok := postgresRole(args, ours); ok {
				out = append(out, Proc{Name: name, Group: GroupServer, Pid: pid})
			}
		case "beam.smp", "erl_child_setup", "inet_gethost", "epmd":
			out = append(out, Proc{Name: "rabbitmq", Group: GroupServer, Pid: pid})
		}
	}
	return out
}

// backendClient matches a PostgreSQL backend's title: "postgres: 15/main:
// user db 127.0.0.1(43210) idle" names the client's address and port.
var backendClient = regexp.MustCompile(`\((\d+)\)`)

// postgresRole names a postgres process for the report, and says whether it
// counts: shared processes always, a backend only when its client port is
// one of ours.
func postgresRole(args string, ours map[int]bool) (string, bool) {
	m := backendClient.FindStringSubmatch(args)
	if m == nil {
		return "postgres (shared)", true
	}
	port, _ := strconv.Atoi(m[1])
	return "postgres (our backends)", ours[port]
}

// clientPorts is the set of local TCP ports of every connection the pids
// hold (IPv4 and IPv6), read from their file descriptors and /proc/net/tcp.
func clientPorts(pids []int) map[int]bool {
	inodes := map[string]bool{}
	for _, pid := range pids {
		fds, _ := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
		for _, fd := range fds {
			link, err := os.Readlink(fd)
			if err == nil && strings.HasPrefix(link, "socket:[") {
				inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
			}
		}
	}
	ports := map[int]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for inode, port := range tcpLocalPorts(data) {
			if inodes[inode] {
				ports[port] = true
			}
		}
	}
	return ports
}

// tcpLocalPorts maps each socket's inode to its local port, from the text
// of /proc/net/tcp: "sl local_address rem_address st ... uid timeout inode".
func tcpLocalPorts(table []byte) map[string]int {
	out := map[string]int{}
	for _, line := range strings.Split(string(table), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		port, err := strconv.ParseInt(hexPort, 16, 32)
		if err != nil {
			continue
		}
		out[f[9]] = int(port)
	}
	return out
}
