//go:build k8s

package k8stest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const namespace = "ordermesh"

// apps are the six Deployments, each named after its Dapr app id.
var apps = []string{"gateway", "users", "products", "orders", "payments", "notifications"}

// cluster drives the scripts in dapr/kubernetes/cluster and kubectl.
type cluster struct {
	t       *testing.T
	scripts string // dapr/kubernetes/cluster
	state   string // .run/k8s
	bin     string // .dapr/kubernetes/bin
	env     []string
}

func newCluster(t *testing.T) *cluster {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	require.True(t, ok)
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	c := &cluster{
		t:       t,
		scripts: filepath.Join(root, "dapr", "kubernetes", "cluster"),
		state:   filepath.Join(root, ".run", "k8s"),
		bin:     filepath.Join(root, ".dapr", "kubernetes", "bin"),
	}
	c.env = append(os.Environ(),
		"KUBECONFIG="+filepath.Join(c.state, "admin.kubeconfig"),
		"PATH="+c.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return c
}

// on returns the cluster for use in test t (a subtest): its failures are t's.
func (c *cluster) on(t *testing.T) *cluster {
	cc := *c
	cc.t = t
	return &cc
}

// script runs one of the cluster scripts, its progress lines in the test log.
func (c *cluster) script(timeout time.Duration, name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.scripts, name), args...)
	cmd.Env = c.env
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			c.t.Log(sc.Text())
		}
	}()
	err := cmd.Run()
	pw.Close()
	<-done
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return nil
}

// kubectl runs kubectl in the test's namespace and returns its output.
func (c *cluster) kubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(c.bin, "kubectl"), append([]string{"-n", namespace}, args...)...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (c *cluster) mustKubectl(args ...string) string {
	c.t.Helper()
	out, err := c.kubectl(args...)
	require.NoError(c.t, err)
	return out
}

// pod is what the tests read of a pod.
type pod struct {
	Name        string
	IP          string
	Phase       string
	Terminating bool
	Containers  []string // names, in order
	Ready       int      // containers ready
}

func (c *cluster) pods(selector string) []pod {
	c.t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name              string  `json:"name"`
				DeletionTimestamp *string `json:"deletionTimestamp"`
			} `json:"metadata"`
			Spec struct {
				Containers []struct {
					Name string `json:"name"`
				} `json:"containers"`
			} `json:"spec"`
			Status struct {
				Phase             string `json:"phase"`
				PodIP             string `json:"podIP"`
				ContainerStatuses []struct {
					Ready bool `json:"ready"`
				} `json:"containerStatuses"`
			} `json:"status"`
		} `json:"items"`
	}
	require.NoError(c.t, json.Unmarshal([]byte(c.mustKubectl("get", "pods", "-l", selector, "-o", "json")), &list))
	var out []pod
	for _, it := range list.Items {
		p := pod{Name: it.Metadata.Name, IP: it.Status.PodIP, Phase: it.Status.Phase, Terminating: it.Metadata.DeletionTimestamp != nil}
		for _, ctr := range it.Spec.Containers {
			p.Containers = append(p.Containers, ctr.Name)
		}
		for _, s := range it.Status.ContainerStatuses {
			if s.Ready {
				p.Ready++
			}
		}
		out = append(out, p)
	}
	return out
}

// appPods are the running, ready, not terminating pods of one app.
func (c *cluster) appPods(app string) []pod {
	c.t.Helper()
	var out []pod
	for _, p := range c.pods("app.kubernetes.io/name=" + app) {
		if p.Phase == "Running" && !p.Terminating && p.Ready == len(p.Containers) {
			out = append(out, p)
		}
	}
	return out
}

// secret reads one key of a Secret.
func (c *cluster) secret(name, key string) string {
	c.t.Helper()
	out := c.mustKubectl("get", "secret", name, "-o", "go-template={{index .data \""+key+"\" | base64decode}}")
	require.NotEmpty(c.t, out, "secret %s/%s", name, key)
	return out
}

// exec runs a command in a pod's container and returns its output.
func (c *cluster) exec(podName, container string, command ...string) string {
	c.t.Helper()
	return c.mustKubectl(append([]string{"exec", podName, "-c", container, "--"}, command...)...)
}

var forwarding = regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) ->`)

// portForward forwards a free local port to a port inside a pod (its
// loopback, where daprd's API listens) and returns the local address. The
// kubectl process stops when the test ends.
func (c *cluster) portForward(podName string, port int) string {
	c.t.Helper()
	cmd := exec.Command(filepath.Join(c.bin, "kubectl"), "-n", namespace, "port-forward", "--address", "127.0.0.1", "pod/"+podName, fmt.Sprintf(":%d", port))
	cmd.Env = c.env
	out, err := cmd.StdoutPipe()
	require.NoError(c.t, err)
	require.NoError(c.t, cmd.Start())
	c.t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := forwarding.FindStringSubmatch(sc.Text()); m != nil {
				found <- "127.0.0.1:" + m[1]
			}
		}
	}()
	select {
	case addr := <-found:
		return addr
	case <-time.After(30 * time.Second):
		c.t.Fatalf("kubectl port-forward %s %d: no forwarding line within 30s", podName, port)
		return ""
	}
}

// pidFiles are the processes up.sh started (name -> pid).
func (c *cluster) pidFiles() map[string]string {
	out := map[string]string{}
	files, _ := filepath.Glob(filepath.Join(c.state, "pids", "*.pid"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err == nil {
			out[strings.TrimSuffix(filepath.Base(f), ".pid")] = strings.TrimSpace(string(b))
		}
	}
	return out
}

// links are the names of this machine's network links.
func links(t *testing.T) map[string]bool {
	t.Helper()
	ifaces, err := net.Interfaces()
	require.NoError(t, err)
	out := map[string]bool{}
	for _, i := range ifaces {
		out[i.Name] = true
	}
	return out
}

// assertNothingLeft checks what `make k8s-down` promises: none of the
// cluster's processes (given by their pids) runs, nothing is mounted under
// its state folder or in /run/netns, no network link exists that did not
// before the cluster (cni0, k8sbr0, the pods' veths), and no KUBE-* or CNI-*
// iptables chain is left.
func assertNothingLeft(t *testing.T, state string, pids map[string]string, linksBefore map[string]bool) {
	t.Helper()
	for name, pid := range pids {
		_, err := os.Stat("/proc/" + pid)
		assert.True(t, os.IsNotExist(err), "%s (pid %s) still runs", name, pid)
	}
	mounts, err := os.ReadFile("/proc/mounts")
	require.NoError(t, err)
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (strings.HasPrefix(f[1], state+"/") || strings.HasPrefix(f[1], "/run/netns/cni-")) {
			t.Errorf("still mounted: %s", f[1])
		}
	}
	for name := range links(t) {
		if !linksBefore[name] {
			t.Errorf("network link left: %s", name)
		}
	}
	for _, ipt := range []string{"iptables", "ip6tables"} {
		for _, table := range []string{"filter", "nat", "mangle", "raw"} {
			out, err := exec.Command(ipt, "-t", table, "-S").CombinedOutput()
			require.NoError(t, err, "%s -t %s -S: %s", ipt, table, out)
			for _, line := range strings.Split(string(out), "\n") {
				if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") {
					t.Errorf("%s %s: %s", ipt, table, line)
				}
			}
		}
	}
	ports := procListening(t)
	for _, p := range []int{2379, 2380, 6443, 10250, 10256} {
		assert.False(t, ports[p], "port %d still listens", p)
	}
}

// procListening is the set of TCP ports something on this machine listens on.
func procListening(t *testing.T) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			fields := strings.Fields(line)
			if len(fields) < 4 || fields[3] != "0A" { // LISTEN
				continue
			}
			var port int
			if _, err := fmt.Sscanf(fields[1][strings.LastIndex(fields[1], ":")+1:], "%X", &port); err == nil {
				out[port] = true
			}
		}
	}
	return out
}
