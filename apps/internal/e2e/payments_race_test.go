//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
	"github.com/ordermesh/ordermesh/apps/internal/identity"
)

// storedPaymentKeys counts the payments stored in the system's Redis
// database (the payments app's "payment/<id>" keys).
func storedPaymentKeys(t *testing.T, sys *harness.System) string {
	t.Helper()
	n, err := sys.RedisDo("EVAL", `return #redis.call('KEYS', ARGV[1])`, "0", sys.App("payments").ID+"||payment/*")
	require.NoError(t, err)
	return n
}

// pendingPayments is what payments' pending shards hold: "" when no key
// is listed as under way.
func pendingPayments(t *testing.T, sys *harness.System) string {
	t.Helper()
	script := `local out = '' for _, k in ipairs(redis.call('KEYS', ARGV[1])) do local v = redis.call('HGET', k, 'data') if v and v ~= '[]' and v ~= 'null' then out = out .. k .. '=' .. v .. ' ' end end return out`
	got, err := sys.RedisDo("EVAL", script, "0", sys.App("payments").ID+"||pending/*")
	require.NoError(t, err)
	return strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(got, "+"), "$"))
}

// streamPending is how many entries of a Redis stream (a topic) its
// consumer groups hold delivered but not acknowledged.
func streamPending(t *testing.T, sys *harness.System, stream string) string {
	t.Helper()
	script := `if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end local n = 0 for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do n = n + g[6] end return n`
	got, err := sys.RedisDo("EVAL", script, "1", stream)
	require.NoError(t, err)
	return got
}

// requireSettled waits until payments has nothing under way: no key listed
// pending, nothing pending on the outbox's internal topic nor on the
// payments topic.
func requireSettled(t *testing.T, sys *harness.System) {
	t.Helper()
	outbox := "default" + sys.App("payments").ID + "paymentsoutbox"
	eventually(t, 30*time.Second, func() (bool, string) {
		pending, staged, topic := pendingPayments(t, sys), streamPending(t, sys, outbox), streamPending(t, sys, "payments")
		return pending == "" && staged == ":0" && topic == ":0", fmt.Sprintf("pending keys %q, outbox %s, payments topic %s", pending, staged, topic)
	})
}

// waitPaid polls until the order is paid by one payment and returns its id.
func waitPaid(t *testing.T, gw, orderID string, within time.Duration) string {
	t.Helper()
	var got paidOrder
	eventually(t, within, func() (bool, string) {
		do(t, http.MethodGet, gw+"/api/orders/"+orderID, nil).JSON(t, &got)
		return got.Status == "paid" && got.PaymentID != "", "order status " + got.Status
	})
	return got.PaymentID
}

// TestPaymentRaceTwoReplicas sends 100 payments with one Idempotency-Key at
// once, spread over two gateways, each reaching its own payments replica:
// the two replicas race on the same key record in the same store.
func TestPaymentRaceTwoReplicas(t *testing.T) {
	sys := harness.Start(t, harness.Options{Replicas: map[string]int{"gateway": 2, "payments": 2}})
	gws := sys.GatewayURLs()
	require.Len(t, gws, 2)
	require.Len(t, sys.Replicas("payments"), 2)
	u := createUser(t, gws[0])
	p := createProduct(t, gws[0], 1500, 10)
	o := placeOrder(t, gws[0], u.ID, p.ID, 1)
	key := "race-" + uuid.NewString()
	body := map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}

	const n = 100
	results := make([]response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i] = do(t, http.MethodPost, gws[i%2]+"/api/payments", body, "Idempotency-Key", key)
		})
	}
	close(start)
	wg.Wait()

	codes := map[int]int{}
	ids := map[string]int{}
	for _, r := range results {
		codes[r.Status]++
		switch r.Status {
		case http.StatusCreated, http.StatusOK:
			var pay payment
			r.JSON(t, &pay)
			ids[pay.ID]++
		case http.StatusConflict:
			assert.Equal(t, "request_in_flight", r.ErrorCode(), "%s", r.Body)
		default:
			t.Errorf("unexpected answer %d: %s", r.Status, r.Body)
		}
	}
	t.Logf("answers: %v", codes)
	assert.Equal(t, 1, codes[http.StatusCreated], "exactly one request created the payment")
	require.Len(t, ids, 1, "every answer carries the same payment: %v", ids)
	assert.Equal(t, ":1", storedPaymentKeys(t, sys), "exactly one payment is stored")
	var payID string
	for id := range ids {
		payID = id
	}
	assert.Equal(t, payID, waitPaid(t, gws[1], o.ID, 30*time.Second))
	requireSettled(t, sys)
	events, err := sys.RedisDo("XLEN", "payments")
	require.NoError(t, err)
	assert.Equal(t, ":1", events, "one payment_completed for the one payment")
}

// TestPaymentsKilledBetweenSteps kills a payments replica right after each
// step of a payment (the test hook ORDERMESH_EXIT_AT) and checks that the
// order ends paid, by exactly one payment, within the bound the README
// states, with the other replica's reconciler doing the repair. The timings
// are shortened for the test (attempt 2 s, stale after 5 s, reconcile every
// second): the bound is stale + reconcile interval + an attempt + the
// outbox's delivery (with its sidecar gone too: the Redis consumer group's
// processingTimeout, 15 s, before the other sidecar takes the staged event).
func TestPaymentsKilledBetweenSteps(t *testing.T) {
	for _, tt := range []struct {
		step        string
		killSidecar bool // the replica's sidecar dies with it, right after
	}{
		{step: "payments.order-claimed"},
		{step: "payments.payment-stored"},
		{step: "payments.payment-stored", killSidecar: true},
	} {
		name := tt.step
		if tt.killSidecar {
			name += " with its sidecar"
		}
		t.Run(name, func(t *testing.T) {
			once := filepath.Join(t.TempDir(), "fired")
			sys := harness.Start(t, harness.Options{
				Replicas: map[string]int{"payments": 2},
				Env: map[string]map[string]string{"payments": {
					"ORDERMESH_EXIT_AT":       tt.step,
					"ORDERMESH_EXIT_ONCE":     once,
					"PAYMENT_ATTEMPT_TIMEOUT": "2s",
					"PAYMENT_STALE_AFTER":     "5s",
					"PAYMENT_RECONCILE_EVERY": "1s",
				}},
			})
			gw := sys.GatewayURL()
			victim := sys.Replicas("payments")[0] // the gateway's replica 0 reaches it
			u := createUser(t, gw)
			p := createProduct(t, gw, 900, 10)
			o := placeOrder(t, gw, u.ID, p.ID, 1)
			key := "kill-" + uuid.NewString()
			body := map[string]any{"order_id": o.ID, "amount_cents": o.TotalCents}

			sidecarKilled := make(chan error, 1)
			if tt.killSidecar {
				// The sidecar dies the moment its app does (SIGKILL, as
				// in a crash): before the outbox's one-second wait is
				// over, so the staged event is left pending for another
				// sidecar of payments to take.
				go func() {
					for !victim.AppProc().Exited() {
						time.Sleep(5 * time.Millisecond)
					}
					sidecarKilled <- syscall.Kill(victim.SidecarProc().Pid(), syscall.SIGKILL)
				}()
			}
			started := time.Now()
			res := do(t, http.MethodPost, gw+"/api/payments", body, "Idempotency-Key", key)
			assert.GreaterOrEqual(t, res.Status, 500, "the request died with its replica: %d %s", res.Status, res.Body)
			eventually(t, 10*time.Second, func() (bool, string) {
				return victim.AppProc().Exited(), "payments replica 0 still running"
			})
			if tt.killSidecar {
				require.NoError(t, <-sidecarKilled)
				eventually(t, 5*time.Second, func() (bool, string) { return victim.SidecarProc().Exited(), "sidecar still running" })
			}

			// 5 s stale + 1 s reconcile + 4 s attempt + 17 s redelivery + margin.
			payID := waitPaid(t, gw, o.ID, 45*time.Second)
			t.Logf("order paid %s after the kill", time.Since(started).Round(100*time.Millisecond))
			assert.Equal(t, ":1", storedPaymentKeys(t, sys), "exactly one payment")
			requireSettled(t, sys)
			// payment_completed may go out twice (the repair of a key
			// whose payment was stored publishes it again); orders paid
			// the order once, by the one payment, as checked above.

			// The client's retry, reaching the surviving replica, is a
			// replay of the payment the repair finished.
			retry := do(t, http.MethodPost, sys.Replicas("payments")[1].URL()+"/payments", body, "Idempotency-Key", key, "dapr-api-token", sys.AppToken,
				identity.Header, customer(u.ID).String()) // as the gateway carries the caller
			require.Equal(t, http.StatusOK, retry.Status, "%s", retry.Body)
			var pay payment
			retry.JSON(t, &pay)
			assert.Equal(t, payID, pay.ID)
			assert.Equal(t, "true", retry.Header.Get("Idempotent-Replayed"))
		})
	}
}

// TestUsersKilledBetweenClaimAndStore kills users after it claimed an
// email and before it stored the user: the email is not held for good; once
// the claim is stale (EMAIL_CLAIM_STALE_AFTER, 3 s here) the next
// registration of that email takes it and stores its user.
func TestUsersKilledBetweenClaimAndStore(t *testing.T) {
	once := filepath.Join(t.TempDir(), "fired")
	sys := harness.Start(t, harness.Options{
		Env: map[string]map[string]string{"users": {
			"ORDERMESH_EXIT_AT":       "users.email-claimed",
			"ORDERMESH_EXIT_ONCE":     once,
			"REGISTER_TIMEOUT":        "1s",
			"EMAIL_CLAIM_STALE_AFTER": "3s",
		}},
	})
	gw := sys.GatewayURL()
	users := sys.App("users")
	email := uniqueEmail()

	res := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "Ada", "email": email})
	assert.GreaterOrEqual(t, res.Status, 500, "the registration died with users: %d %s", res.Status, res.Body)
	eventually(t, 10*time.Second, func() (bool, string) { return users.AppProc().Exited(), "users still running" })
	killed := time.Now()
	users.StartApp()
	users.WaitReady()

	var created user
	eventually(t, 20*time.Second, func() (bool, string) {
		res := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "Ada", "email": email})
		switch res.Status {
		case http.StatusCreated:
			res.JSON(t, &created)
			return true, ""
		case http.StatusConflict:
			require.Equal(t, "email_taken", res.ErrorCode())
			return false, "email still held by the dead registration"
		}
		t.Fatalf("unexpected answer %d: %s", res.Status, res.Body)
		return false, ""
	})
	t.Logf("email free again %s after the kill", time.Since(killed).Round(100*time.Millisecond))
	assert.Equal(t, email, created.Email)
	got := do(t, http.MethodGet, gw+"/api/users/"+created.ID, nil)
	require.Equal(t, http.StatusOK, got.Status, "%s", got.Body)

	// And the email now belongs to that stored user: a third registration
	// is refused.
	third := do(t, http.MethodPost, gw+"/api/users", map[string]any{"name": "Eve", "email": email})
	assert.Equal(t, http.StatusConflict, third.Status, "%s", third.Body)
	assert.Equal(t, "email_taken", third.ErrorCode())
}
