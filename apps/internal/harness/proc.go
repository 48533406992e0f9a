package harness

import (
	"bytes"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ordermesh/ordermesh/dapr/procs"
)

// Proc is one process the harness started, with its output in a log file.
type Proc struct {
	Name    string
	Kind    string // "app" or "sidecar"
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
	mu      sync.Mutex
	err     error
	stopped bool
}

// startProc starts bin; setup may change the command before it starts (the
// user it runs as, its folder).
func startProc(name, kind, bin string, args, env []string, logDir string, setup ...func(*exec.Cmd)) (*Proc, error) {
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group: a signal to the test binary's group does not reach
	// it, and Stop can take down anything it spawned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	for _, f := range setup {
		f(cmd)
	}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	p := &Proc{Name: name, Kind: kind, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// CPUTime is the processor time (user and system) the process has used so
// far, read from /proc/<pid>/stat (Linux only).
func (p *Proc) CPUTime() (time.Duration, error) { return procs.CPUTime(p.Pid()) }

// Exited reports whether the process has ended.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ExitErr is how the process ended (nil for a clean exit).
func (p *Proc) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Stop sends SIGTERM, waits up to 10 s for a graceful exit, then kills the
// whole process group. It is safe to call more than once.
func (p *Proc) Stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	if p.Exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// Log returns everything the process wrote.
func (p *Proc) Log() string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return string(data)
}

// Tail returns the last n lines the process wrote.
func (p *Proc) Tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.Log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts finds n distinct free ports. They are drawn from below the
// kernel's ephemeral range (32768 and up on Linux): a port handed out there
// for an outgoing connection could be taken between this check and the
// moment a sidecar binds it, and daprd binds some ports only after it has its
// certificate. Holding every listener until all are found keeps them
// distinct; a port is never handed out twice by one test binary (systems
// starting at the same time would otherwise race for it), and a random start
// keeps concurrent test binaries apart.
func freePorts(n int) ([]int, error) {
	const low, high = 20000, 32000
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	ports := make([]int, 0, n)
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	start := low + mrand.IntN(high-low)
	for i := 0; i < high-low && len(ports) < n; i++ {
		port := low + (start-low+i)%(high-low)
		if handedOut[port] {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err != nil {
			continue
		}
		lns = append(lns, l)
		ports = append(ports, port)
	}
	if len(ports) < n {
		return nil, fmt.Errorf("only %d of %d free ports between %d and %d", len(ports), n, low, high)
	}
	for _, port := range ports {
		handedOut[port] = true
	}
	return ports, nil
}

// The ports freePorts has handed out in this test binary.
var (
	handedOutMu sync.Mutex
	handedOut   = map[int]bool{}
)

// Alive reports whether a pid still runs (a zombie does not count).
func Alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	rest := stat[bytes.LastIndexByte(stat, ')')+1:]
	fields := strings.Fields(string(rest))
	return len(fields) > 0 && fields[0] != "Z"
}

// listenFree listens on a free port below the ephemeral range (see
// freePorts), so the port can be listened on again after a Down.
func listenFree() (net.Listener, error) {
	for range 20 {
		ports, err := freePorts(1)
		if err != nil {
			return nil, err
		}
		if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(ports[0])); err == nil {
			return l, nil
		}
	}
	return nil, errors.New("no free port to listen on")
}
