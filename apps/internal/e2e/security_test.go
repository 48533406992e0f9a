//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// TestSecurity checks the mesh's guarantees against real sidecars: mTLS with
// this system's Sentry, deny-by-default access policies, API tokens on every
// sidecar and app, and component scopes.
func TestSecurity(t *testing.T) {
	sys := harness.Start(t, harness.Options{})
	gw := sys.GatewayURL()
	u := createUser(t, gw)
	p := createProduct(t, gw, 100, 5)
	token := sys.DaprToken

	invoke := func(via, target *harness.App, verb, method string) response {
		t.Helper()
		return do(t, verb, via.SidecarURL()+"/v1.0/invoke/"+target.ID+"/method/"+method, nil, "dapr-api-token", token)
	}

	t.Run("access policies", func(t *testing.T) {
		tests := []struct {
			name        string
			via, target string
			verb        string
			method      string
			status      int
		}{
			{"orders may check users", "orders", "users", http.MethodGet, "internal/users/" + u.ID, http.StatusOK},
			{"gateway may read users", "gateway", "users", http.MethodGet, "users/" + u.ID, http.StatusOK},
			{"payments may not call users", "payments", "users", http.MethodGet, "internal/users/" + u.ID, http.StatusForbidden},
			{"notifications may not call products", "notifications", "products", http.MethodGet, "products/" + p.ID, http.StatusForbidden},
			{"gateway may not call internal routes", "gateway", "users", http.MethodGet, "internal/users/" + u.ID, http.StatusForbidden},
			{"orders may not read payments", "orders", "payments", http.MethodGet, "payments/x", http.StatusForbidden},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				res := invoke(sys.App(tc.via), sys.App(tc.target), tc.verb, tc.method)
				assert.Equal(t, tc.status, res.Status, "%s", res.Body)
				if tc.status == http.StatusForbidden {
					assert.Contains(t, string(res.Body), "access control policy has denied access")
				}
			})
		}
	})

	t.Run("every sidecar's API wants the token", func(t *testing.T) {
		for _, name := range harness.Apps {
			a := sys.App(name)
			res := do(t, http.MethodGet, a.SidecarURL()+"/v1.0/metadata", nil)
			assert.Equal(t, http.StatusUnauthorized, res.Status, "%s without a token", name)
			res = do(t, http.MethodGet, a.SidecarURL()+"/v1.0/metadata", nil, "dapr-api-token", "not-the-token")
			assert.Equal(t, http.StatusUnauthorized, res.Status, "%s with a wrong token", name)
			res = do(t, http.MethodGet, a.SidecarURL()+"/v1.0/metadata", nil, "dapr-api-token", token)
			assert.Equal(t, http.StatusOK, res.Status, "%s with the token", name)
		}
	})

	t.Run("every app accepts calls only from its sidecar", func(t *testing.T) {
		paths := map[string]string{
			"users": "/users/" + u.ID, "products": "/products", "orders": "/orders/x",
			"payments": "/payments/x", "notifications": "/notifications?user_id=" + u.ID,
		}
		for name, path := range paths {
			a := sys.App(name)
			res := do(t, http.MethodGet, a.URL()+path, nil)
			assert.Equal(t, http.StatusUnauthorized, res.Status, "%s%s without the app token", name, path)
			assert.Equal(t, "unauthorized", res.ErrorCode())
			assert.Equal(t, http.StatusOK, do(t, http.MethodGet, a.URL()+"/healthz", nil).Status, "%s health stays open", name)
			res = do(t, http.MethodGet, a.URL()+path, nil, "dapr-api-token", sys.AppToken)
			assert.NotEqual(t, http.StatusUnauthorized, res.Status, "%s%s with the app token", name, path)
		}
	})

	t.Run("sidecars talk TLS with certificates from this Sentry", func(t *testing.T) {
		users := sys.App("users")
		roots := x509.NewCertPool()
		require.True(t, roots.AppendCertsFromPEM([]byte(sys.Sentry.TrustAnchors(t))))
		var served []*x509.Certificate
		conf := &tls.Config{
			InsecureSkipVerify: true, // verified below, by SPIFFE id rather than host name
			VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
				for _, c := range raw {
					cert, err := x509.ParseCertificate(c)
					if err != nil {
						return err
					}
					served = append(served, cert)
				}
				return nil
			},
			NextProtos: []string{"h2"},
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", "127.0.0.1:"+strconv.Itoa(users.InternalGRPCPort), conf)
		if err == nil {
			conn.Close()
		}
		require.NotEmpty(t, served, "users' sidecar-to-sidecar port answered a TLS handshake with its certificate")
		leaf := served[0]
		intermediates := x509.NewCertPool()
		for _, c := range served[1:] {
			intermediates.AddCert(c)
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		assert.NoError(t, err, "the certificate chains to this system's Sentry")
		var ids []string
		for _, uri := range leaf.URIs {
			ids = append(ids, uri.String())
		}
		assert.Contains(t, ids, "spiffe://public/ns/default/"+users.ID)

		// A plain-text client gets nothing from that port.
		plain, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(users.InternalGRPCPort), 5*time.Second)
		require.NoError(t, err)
		defer plain.Close()
		_ = plain.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = plain.Write([]byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
		buf := make([]byte, 64)
		n, _ := plain.Read(buf)
		// Either the port hangs up, or it answers with a TLS alert record
		// (content type 21): never with an HTTP/2 frame.
		assert.True(t, n == 0 || buf[0] == 21, "a plain-text client got %q", buf[:n])
	})

	t.Run("a sidecar with a certificate from another Sentry cannot call in", func(t *testing.T) {
		foreign := harness.StartSentry(t, filepath.Join(t.TempDir(), "foreign-sentry"), sys.ConfigPath(), nil)
		// The impostor even claims to be orders, which may check users.
		impostor := sys.StartLoneSidecar(sys.App("orders").ID, foreign)
		res := do(t, http.MethodGet, impostor+"/v1.0/invoke/"+sys.App("users").ID+"/method/internal/users/"+u.ID, nil, "dapr-api-token", token)
		assert.NotEqual(t, http.StatusOK, res.Status, "%s", res.Body)
		assert.GreaterOrEqual(t, res.Status, 400)
		// The real orders still can.
		assert.Equal(t, http.StatusOK, invoke(sys.App("orders"), sys.App("users"), http.MethodGet, "internal/users/"+u.ID).Status)
	})

	t.Run("users' sidecar cannot open orderstore", func(t *testing.T) {
		res := do(t, http.MethodGet, sys.App("users").SidecarURL()+"/v1.0/state/orderstore/anything", nil, "dapr-api-token", token)
		assert.GreaterOrEqual(t, res.Status, 400, "%s", res.Body)
		assert.Contains(t, string(res.Body), "orderstore")
		res = do(t, http.MethodGet, sys.App("orders").SidecarURL()+"/v1.0/state/orderstore/anything", nil, "dapr-api-token", token)
		assert.Equal(t, http.StatusNoContent, res.Status, "orders' own sidecar has it: %s", res.Body)
	})
}
