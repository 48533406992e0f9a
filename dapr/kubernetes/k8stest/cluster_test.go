//go:build k8s

package k8stest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCluster boots the single-node cluster (dapr/kubernetes/cluster/up.sh),
// deploys ordermesh with the redis overlay, checks it, swaps to the
// rabbitmq overlay, checks the order flow again, and tears the cluster down
// (down.sh), checking that nothing of it is left. The cluster lives exactly
// as long as this test.
//
// K8S_LOAD_RATE sets the orders per second of the fault loads (default 10),
// K8S_LOAD_SECONDS the length of the pod-kill load (default 60).
func TestCluster(t *testing.T) {
	c := upCluster(t, "redis")
	gw := newGatewayClient("http://" + c.mustKubectl("get", "svc", "gateway", "-o", "jsonpath={.spec.clusterIP}"))

	t.Run("every pod 2/2, two or more per app", func(t *testing.T) { checkPods(t, c) })
	t.Run("order flow", func(t *testing.T) { orderFlow(t, gw) })
	t.Run("payments: 100 concurrent with one key make one payment", func(t *testing.T) { paymentsRace(t, c, gw) })
	t.Run("access policies and mTLS identities from the cluster's Sentry", func(t *testing.T) { accessAndMTLS(t, c) })
	t.Run("users scaled to 0: orders fail fast, cached user, breaker open, recovery", func(t *testing.T) { usersDown(t, c, gw) })
	t.Run("forced pod deletion under load", func(t *testing.T) { podKills(t, c, gw) })
	t.Run("rolling restart of every Deployment under load", func(t *testing.T) { rollingRestart(t, c, gw) })

	start := time.Now()
	require.NoError(t, c.script(20*time.Minute, "deploy.sh", "rabbitmq"))
	t.Logf("swapped to the rabbitmq overlay in %s", time.Since(start).Round(time.Second))
	t.Run("rabbitmq: every pod 2/2, two or more per app", func(t *testing.T) { checkPods(t, c) })
	t.Run("rabbitmq: the broker's topology declared before the apps", func(t *testing.T) { checkTopology(t, c) })
	t.Run("rabbitmq: order flow", func(t *testing.T) { orderFlow(t, gw) })
}

// upCluster boots the single-node cluster with overlay deployed (up.sh: every
// rollout awaited) once `make run` is not running, and tears it down when t
// ends (down.sh), checking that nothing of it is left. Every test that needs
// the cluster starts with it, so the cluster lives exactly as long as that
// test.
func upCluster(t *testing.T, overlay string) *cluster {
	t.Helper()
	c := newCluster(t)
	waitForPortsFree(t, 3500, 8080)
	linksBefore := links(t)
	t.Cleanup(func() {
		pids := c.pidFiles()
		start := time.Now()
		assert.NoError(t, c.script(10*time.Minute, "down.sh"))
		t.Logf("cluster down in %s", time.Since(start).Round(time.Second))
		assertNothingLeft(t, c.state, pids, linksBefore)
	})
	start := time.Now()
	require.NoError(t, c.script(30*time.Minute, "up.sh", overlay))
	t.Logf("cluster up with the %s overlay in %s", overlay, time.Since(start).Round(time.Second))
	return c
}

// waitForPortsFree waits while `make run` (fixed ports) runs on this machine:
// its sidecars and the cluster must not run together.
func waitForPortsFree(t *testing.T, ports ...int) {
	t.Helper()
	eventually(t, 20*time.Minute, func() (bool, string) {
		listening := procListening(t)
		for _, p := range ports {
			if listening[p] {
				return false, fmt.Sprintf("port %d is in use (is `make run` running?)", p)
			}
		}
		return true, ""
	})
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, name)
	return n
}

func checkPods(t *testing.T, c *cluster) {
	c = c.on(t)
	for _, app := range apps {
		pods := c.appPods(app)
		assert.GreaterOrEqual(t, len(pods), 2, "%s: ready pods", app)
		for _, p := range pods {
			assert.Equal(t, []string{"app", "daprd"}, p.Containers, "%s: the app and its injected daprd", p.Name)
			assert.Equal(t, 2, p.Ready, "%s: ready containers", p.Name)
		}
	}
	t.Logf("pods:\n%s", c.mustKubectl("get", "pods", "-o", "wide"))
}

// checkTopology: every pod that uses orderpubsub declared the exchanges,
// queues and bindings of every subscription (init container broker-topology)
// before its app and sidecar started, so an event published before its
// subscriber first starts waits in its queue.
func checkTopology(t *testing.T, c *cluster) {
	c = c.on(t)
	for _, app := range []string{"orders", "payments", "notifications"} {
		for _, p := range c.appPods(app) {
			code := c.mustKubectl("get", "pod", p.Name, "-o",
				`jsonpath={.status.initContainerStatuses[?(@.name=="broker-topology")].state.terminated.exitCode}`)
			assert.Equal(t, "0", strings.TrimSpace(code), "%s: exit code of broker-topology", p.Name)
			assert.Contains(t, c.mustKubectl("logs", p.Name, "-c", "broker-topology"),
				"3 exchanges, 3 durable queues declared", "%s: broker-topology's log", p.Name)
		}
	}
}

func orderFlow(t *testing.T, gw *gatewayClient) {
	u := gw.createUser(t)
	p := gw.createProduct(t, 1200, 10)
	o := gw.placeOrder(t, u.ID, p.ID, 2)
	assert.Equal(t, int64(2400), o.TotalCents)
	assert.Equal(t, "created", o.Status)

	var got order
	gw.do(t, http.MethodGet, "/api/orders/"+o.ID, nil).JSON(t, &got)
	assert.Equal(t, o.ID, got.ID)
	var cur product
	gw.do(t, http.MethodGet, "/api/products/"+p.ID, nil).JSON(t, &cur)
	assert.Equal(t, int64(8), cur.Stock, "stock after the order")

	hasNotification := func(kind string) func() (bool, string) {
		return func() (bool, string) {
			for _, n := range gw.notifications(t, u.ID) {
				if n.OrderID == o.ID && n.Type == kind {
					return true, ""
				}
			}
			return false, "no " + kind + " notification for order " + o.ID
		}
	}
	eventually(t, time.Minute, hasNotification("order_created"))

	r := gw.do(t, http.MethodPost, "/api/payments", map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}, "Idempotency-Key", "flow-"+o.ID)
	require.Equal(t, http.StatusCreated, r.Status, "%s", r)
	var pay payment
	r.JSON(t, &pay)
	eventually(t, time.Minute, func() (bool, string) {
		var got order
		gw.do(t, http.MethodGet, "/api/orders/"+o.ID, nil).JSON(t, &got)
		return got.Status == "paid" && got.PaymentID == pay.ID, "order status " + got.Status
	})
	r = gw.do(t, http.MethodPost, "/api/orders/"+o.ID+"/ship", nil)
	require.Equal(t, http.StatusOK, r.Status, "%s", r)
	eventually(t, time.Minute, hasNotification("order_shipped"))
}

func paymentsRace(t *testing.T, c *cluster, gw *gatewayClient) {
	c = c.on(t)
	u := gw.createUser(t)
	p := gw.createProduct(t, 900, 10)
	o := gw.placeOrder(t, u.ID, p.ID, 1)
	key := "race-" + uuid.NewString()
	body := map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}
	const n = 100
	results := make([]response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			results[i] = gw.call(context.Background(), http.MethodPost, "/api/payments", body, "Idempotency-Key", key)
		})
	}
	wg.Wait()
	ids := map[string]int{}
	codes := map[int]int{}
	for _, r := range results {
		require.NoError(t, r.Err)
		codes[r.Status]++
		switch r.Status {
		case http.StatusCreated, http.StatusOK:
			var pay payment
			r.JSON(t, &pay)
			ids[pay.ID]++
		case http.StatusConflict:
			assert.Equal(t, "request_in_flight", r.ErrorCode(), "%s", r)
		default:
			t.Errorf("unexpected answer %s", r)
		}
	}
	t.Logf("answers to 100 concurrent payments with one key: %v", codes)
	assert.Equal(t, 1, codes[http.StatusCreated], "exactly one request created the payment")
	require.Len(t, ids, 1, "every answer carries the same payment: %v", ids)
	assert.Equal(t, 1, storedPayments(t, c)[o.ID], "payments stored for the order")
}

func accessAndMTLS(t *testing.T, c *cluster) {
	c = c.on(t)
	gwPod := c.appPods("gateway")[0]
	usersPod := c.appPods("users")[0]
	token := c.secret("dapr-api-token", "token")
	// The gateway's sidecar API, on its pod's loopback.
	sidecar := "http://" + c.portForward(gwPod.Name, 3500)
	invoke := func(app, method, tok string) int {
		req, err := http.NewRequest(http.MethodGet, sidecar+"/v1.0/invoke/"+app+"/method/"+method, nil)
		require.NoError(t, err)
		if tok != "" {
			req.Header.Set("dapr-api-token", tok)
		}
		res, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		res.Body.Close()
		return res.StatusCode
	}
	missing := "no-such-" + uuid.NewString()[:8]
	tests := []struct {
		name   string
		app    string
		method string
		token  string
		want   int
	}{
		{"the gateway may read users (the user is unknown: 404)", "users", "users/" + missing, token, http.StatusNotFound},
		{"the gateway may not call users' internal routes", "users", "internal/users/" + missing, token, http.StatusForbidden},
		{"the gateway may not call orders' internal routes", "orders", "internal/orders/" + missing, token, http.StatusForbidden},
		{"the sidecar's API wants its token", "users", "users/" + missing, "", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, invoke(tt.app, tt.method, tt.token))
		})
	}

	t.Run("an app answers only its own sidecar (the app token)", func(t *testing.T) {
		res, err := http.Get("http://" + net.JoinHostPort(usersPod.IP, "8080") + "/users/" + missing)
		require.NoError(t, err)
		res.Body.Close()
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	})

	t.Run("sidecars hold identities from the cluster's Sentry and want one from callers", func(t *testing.T) {
		bundle, err := c.kubectl("-n", "dapr-system", "get", "configmap", "dapr-trust-bundle", "-o", "jsonpath={.data.ca\\.crt}")
		require.NoError(t, err)
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM([]byte(bundle)), "the trust bundle holds certificates")
		var peer []*x509.Certificate
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", net.JoinHostPort(usersPod.IP, "50002"), &tls.Config{
			InsecureSkipVerify: true, // verified below, against the cluster's trust bundle
			NextProtos:         []string{"h2"},
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				for _, r := range raw {
					cert, err := x509.ParseCertificate(r)
					if err != nil {
						return err
					}
					peer = append(peer, cert)
				}
				return nil
			},
		})
		if err == nil {
			// TLS 1.3: the server checks the client's (missing) certificate
			// after the client's side of the handshake; its refusal arrives
			// on the first read.
			_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		require.Error(t, err, "a caller without a certificate is refused")
		var netErr net.Error
		assert.False(t, errors.As(err, &netErr) && netErr.Timeout(), "refused, not ignored: %v", err)
		require.NotEmpty(t, peer, "users' sidecar presented a certificate")
		require.Len(t, peer[0].URIs, 1)
		assert.Equal(t, "spiffe://cluster.local/ns/ordermesh/users", peer[0].URIs[0].String())
		inter := x509.NewCertPool()
		for _, cert := range peer[1:] {
			inter.AddCert(cert)
		}
		_, err = peer[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		assert.NoError(t, err, "the certificate chains to the cluster's trust bundle (dapr-system/dapr-trust-bundle)")
	})
}

// status is the part of GET /api/status the tests read.
type status struct {
	Apps map[string]struct {
		Ready   bool   `json:"ready"`
		Breaker string `json:"breaker"`
	} `json:"apps"`
}

func usersDown(t *testing.T, c *cluster, gw *gatewayClient) {
	c = c.on(t)
	u := gw.createUser(t)
	p := gw.createProduct(t, 500, 100)
	gw.placeOrder(t, u.ID, p.ID, 1)
	// Each gateway replica keeps its own last copies: read the user through
	// every one of them.
	for _, pod := range c.appPods("gateway") {
		direct := newGatewayClient("http://" + net.JoinHostPort(pod.IP, "8080"))
		r := direct.do(t, http.MethodGet, "/api/users/"+u.ID, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s through %s", r, pod.Name)
	}

	c.mustKubectl("scale", "deploy/users", "--replicas=0")
	t.Cleanup(func() { c.kubectl("scale", "deploy/users", "--replicas=2") })
	eventually(t, 2*time.Minute, func() (bool, string) {
		left := c.pods("app.kubernetes.io/name=users")
		return len(left) == 0, fmt.Sprintf("%d users pods left", len(left))
	})

	var lastOrder response
	var took time.Duration
	eventually(t, 2*time.Minute, func() (bool, string) {
		start := time.Now()
		lastOrder = gw.call(context.Background(), http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
		took = time.Since(start)
		require.NoError(t, lastOrder.Err)
		require.Equal(t, http.StatusServiceUnavailable, lastOrder.Status, "an order while users is down: %s", lastOrder)
		var st status
		gw.do(t, http.MethodGet, "/api/status", nil).JSON(t, &st)
		return st.Apps["users"].Breaker == "open", "users breaker " + st.Apps["users"].Breaker
	})
	assert.Equal(t, "dependency_unavailable", lastOrder.ErrorCode(), "%s", lastOrder)
	t.Logf("with users down and its breaker open, an order is refused with 503 in %s", took.Round(time.Millisecond))
	for range 4 { // through either gateway replica
		var got user
		r := gw.do(t, http.MethodGet, "/api/users/"+u.ID, nil)
		require.Equal(t, http.StatusOK, r.Status, "%s", r)
		r.JSON(t, &got)
		assert.True(t, got.Cached, "the gateway serves its last copy, marked cached")
		assert.Equal(t, u.Email, got.Email)
	}

	start := time.Now()
	c.mustKubectl("scale", "deploy/users", "--replicas=2")
	c.mustKubectl("rollout", "status", "deploy/users", "--timeout=5m")
	eventually(t, 3*time.Minute, func() (bool, string) {
		r := gw.call(context.Background(), http.MethodPost, "/api/orders", map[string]any{"user_id": u.ID, "product_id": p.ID, "quantity": 1})
		return r.Status == http.StatusCreated, r.String()
	})
	t.Logf("orders flow again %s after users was scaled back up (the breaker's timeout is 60s)", time.Since(start).Round(time.Second))
	var got user
	gw.do(t, http.MethodGet, "/api/users/"+u.ID, nil).JSON(t, &got)
	assert.False(t, got.Cached, "users answers again")
}

func podKills(t *testing.T, c *cluster, gw *gatewayClient) {
	c = c.on(t)
	const stock = 100_000
	s := newShop(t, gw, 5, 3, stock)
	l := &load{gw: gw, shop: s, rate: envInt(t, "K8S_LOAD_RATE", 10), limit: 200}
	duration := time.Duration(envInt(t, "K8S_LOAD_SECONDS", 60)) * time.Second
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx) }()

	windows := []window{{Name: "whole load", From: start, To: start.Add(duration)}}
	for i, app := range []string{"orders", "products", "payments"} {
		at := start.Add(duration * time.Duration(i+1) / 5)
		time.Sleep(time.Until(at))
		pods := c.appPods(app)
		require.NotEmpty(t, pods, "%s: a ready pod to kill", app)
		victim := pods[0]
		c.mustKubectl("delete", "pod", victim.Name, "--grace-period=0", "--force")
		t.Logf("force-deleted %s at %s", victim.Name, time.Since(start).Round(time.Second))
		windows = append(windows, window{Name: "15s after killing a " + app + " pod", From: at, To: at.Add(15 * time.Second)})
	}
	<-done
	l.report(t, windows...)
	for _, app := range []string{"orders", "products", "payments"} {
		c.mustKubectl("rollout", "status", "deploy/"+app, "--timeout=5m")
	}
	checkInvariants(t, c, gw, s, stock, l.created)
}

func rollingRestart(t *testing.T, c *cluster, gw *gatewayClient) {
	c = c.on(t)
	const stock = 100_000
	s := newShop(t, gw, 5, 3, stock)
	l := &load{gw: gw, shop: s, rate: envInt(t, "K8S_LOAD_RATE", 10), limit: 200}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() { defer close(done); l.run(ctx) }()

	time.Sleep(5 * time.Second) // the load runs before the restart begins
	c.mustKubectl("rollout", "restart", "deploy", "-l", "app.kubernetes.io/component=service")
	for _, app := range apps {
		c.mustKubectl("rollout", "status", "deploy/"+app, "--timeout=10m")
	}
	// Until the last old pod has gone (drained, then deleted).
	eventually(t, 3*time.Minute, func() (bool, string) {
		for _, app := range apps {
			if n := len(c.pods("app.kubernetes.io/name=" + app)); n != 2 {
				return false, fmt.Sprintf("%s has %d pods", app, n)
			}
		}
		return true, ""
	})
	restarted := time.Since(start)
	time.Sleep(5 * time.Second)
	cancel()
	<-done
	failed := l.report(t, window{Name: "rolling restart of every Deployment", From: start, To: time.Now()})
	t.Logf("every Deployment restarted in %s", restarted.Round(time.Second))
	assert.Zero(t, failed["rolling restart of every Deployment"], "failed requests during the rolling restart")
	checkInvariants(t, c, gw, s, stock, l.created)
}
