package resiliency

import (
	"context"
	"errors"
	"testing"
	"time"

	daprres "github.com/dapr/dapr/pkg/resiliency"
	"github.com/dapr/dapr/pkg/resiliency/breaker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// retryScale divides the file's durations in the retry tests, so a 5s
// timeout ends an attempt in 50ms; it changes no count.
const retryScale = 100

// TestServiceInvocationRetries runs one call per case through the policy a
// caller's sidecar applies to the target app (Dapr's own runner: retry,
// breaker, timeout) and counts the attempts that reach the app: the
// services' document in orders' and payments' sidecars, the edge document in
// the gateway's.
func TestServiceInvocationRetries(t *testing.T) {
	providers := map[string]*daprres.Resiliency{
		services: newProvider(t, scaledSpec(t, services, retryScale)),
		edge:     newProvider(t, scaledSpec(t, edge, retryScale)),
	}

	tests := []struct {
		name         string
		doc          string
		app          string
		answer       answer
		wantAttempts int32
		wantErr      error
	}{
		// invokeRetry: a persistently failing call is tried twice in all.
		{name: "503 is retried", doc: services, app: "users", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "502 is retried", doc: services, app: "users", answer: status(502), wantAttempts: 2, wantErr: errApp},
		{name: "504 is retried", doc: services, app: "users", answer: status(504), wantAttempts: 2, wantErr: errApp},
		{name: "500 is not retried", doc: services, app: "users", answer: status(500), wantAttempts: 1, wantErr: errApp},
		{name: "400 is not retried", doc: services, app: "users", answer: status(400), wantAttempts: 1, wantErr: errApp},
		{name: "404 is not retried", doc: services, app: "users", answer: status(404), wantAttempts: 1, wantErr: errApp},
		{name: "409 is not retried", doc: services, app: "users", answer: status(409), wantAttempts: 1, wantErr: errApp},
		{name: "422 is not retried", doc: services, app: "users", answer: status(422), wantAttempts: 1, wantErr: errApp},
		{name: "429 is not retried", doc: services, app: "users", answer: status(429), wantAttempts: 1, wantErr: errApp},
		{name: "a 503 then a success", doc: services, app: "users", answer: failThenSucceed(503), wantAttempts: 2},
		{name: "products 503 is retried", doc: services, app: "products", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "products reservation 409 is not retried", doc: services, app: "products", answer: status(409), wantAttempts: 1, wantErr: errApp},
		// payments reads orders: safe to replay.
		{name: "orders 503 is retried", doc: services, app: "orders", answer: status(503), wantAttempts: 2, wantErr: errApp},
		// Outside `matching`: a call that got no answer and a timed out call
		// are retried whatever the status list says.
		{name: "unreachable is retried", doc: services, app: "users", answer: unreachable, wantAttempts: 2, wantErr: errApp},
		{name: "timeout is retried", doc: services, app: "users", answer: hang, wantAttempts: 2, wantErr: context.DeadlineExceeded},
		{name: "orders timeout is retried", doc: services, app: "orders", answer: hang, wantAttempts: 2, wantErr: context.DeadlineExceeded},

		// The gateway's calls.
		{name: "users 503 is retried", doc: edge, app: "users", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "users 500 is not retried", doc: edge, app: "users", answer: status(500), wantAttempts: 1, wantErr: errApp},
		{name: "users 409 is not retried", doc: edge, app: "users", answer: status(409), wantAttempts: 1, wantErr: errApp},
		{name: "users unreachable is retried", doc: edge, app: "users", answer: unreachable, wantAttempts: 2, wantErr: errApp},
		{name: "users timeout is retried", doc: edge, app: "users", answer: hang, wantAttempts: 2, wantErr: context.DeadlineExceeded},
		{name: "products 503 is retried", doc: edge, app: "products", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "notifications 503 is retried", doc: edge, app: "notifications", answer: status(503), wantAttempts: 2, wantErr: errApp},
		// A timed out POST may have been carried out: no retry on orders and
		// payments, not even of an unanswered call.
		{name: "orders 503 is not retried", doc: edge, app: "orders", answer: status(503), wantAttempts: 1, wantErr: errApp},
		{name: "orders unreachable is tried once", doc: edge, app: "orders", answer: unreachable, wantAttempts: 1, wantErr: errApp},
		{name: "orders timeout is tried once", doc: edge, app: "orders", answer: hang, wantAttempts: 1, wantErr: context.DeadlineExceeded},
		{name: "payments 503 is not retried", doc: edge, app: "payments", answer: status(503), wantAttempts: 1, wantErr: errApp},
		{name: "payments unreachable is tried once", doc: edge, app: "payments", answer: unreachable, wantAttempts: 1, wantErr: errApp},
		{name: "payments timeout is tried once", doc: edge, app: "payments", answer: hang, wantAttempts: 1, wantErr: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.doc+": "+tc.name, func(t *testing.T) {
			// Dapr keeps one breaker per method path; a path per case keeps
			// the cases' failures apart.
			policy := providers[tc.doc].EndpointPolicy(tc.app, tc.app+":"+t.Name())
			attempts, err := run(policy, tc.answer)
			assert.Equal(t, tc.wantAttempts, attempts)
			if tc.wantErr == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tc.wantErr)
			}
		})
	}
}

// TestTimeoutsEndAttempts: each attempt gets the target's own timeout; the
// gateway waits longer for orders, which makes calls of its own.
func TestTimeoutsEndAttempts(t *testing.T) {
	const scale = 10
	tests := []struct {
		doc, app string
		want     time.Duration // unscaled
	}{
		{services, "users", 5 * time.Second},
		{services, "products", 5 * time.Second},
		{services, "orders", 5 * time.Second},
		{edge, "users", 20 * time.Second},
		{edge, "orders", 15 * time.Second},
		{edge, "payments", 30 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.doc+" "+tc.app, func(t *testing.T) {
			t.Parallel()
			provider := newProvider(t, scaledSpec(t, tc.doc, scale))
			var deadlines []time.Duration // of each attempt; -1: none
			_, _ = run(provider.EndpointPolicy(tc.app, tc.app+":"+t.Name()), func(ctx context.Context, _ int32) error {
				d, ok := ctx.Deadline()
				if !ok {
					deadlines = append(deadlines, -1)
				} else {
					deadlines = append(deadlines, time.Until(d))
				}
				return status(400)(ctx, 0) // not retried: one attempt
			})
			require.Len(t, deadlines, 1)
			want := tc.want / scale
			assert.InDelta(t, want, deadlines[0], float64(want)/10, "timeout of one attempt")
		})
	}
}

// TestRetriesCountTowardsTrips shows the layering retry(breaker(timeout)):
// every attempt is counted by the breaker of the called method path, and an
// open breaker ends the retries at once.
func TestRetriesCountTowardsTrips(t *testing.T) {
	provider := newProvider(t, scaledSpec(t, services, retryScale))

	tests := []struct {
		name   string
		app    string
		answer answer
		// attempts that reached the app in each call, one call after another;
		// a call that reaches it fewer times than it would retry met the
		// open breaker.
		attemptsPerCall []int32
	}{
		// usersBreaker trips at 3: the second call's first attempt opens it.
		// This is the bound the end-to-end chaos test measures (apps/internal/e2e).
		{name: "users 503", app: "users", answer: status(503), attemptsPerCall: []int32{2, 1, 0}},
		{name: "users unreachable", app: "users", answer: unreachable, attemptsPerCall: []int32{2, 1, 0}},
		// Dapr counts any status outside 200-399, so 404s trip it too.
		{name: "users 404", app: "users", answer: status(404), attemptsPerCall: []int32{1, 1, 1, 0}},
		// defaultBreaker trips at 5.
		{name: "products 503", app: "products", answer: status(503), attemptsPerCall: []int32{2, 2, 1, 0}},
		{name: "orders 503", app: "orders", answer: status(503), attemptsPerCall: []int32{2, 2, 1, 0}},
		{name: "orders 500", app: "orders", answer: status(500), attemptsPerCall: []int32{1, 1, 1, 1, 1, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			method := tc.app + ":" + t.Name()
			last := len(tc.attemptsPerCall) - 1
			for i, want := range tc.attemptsPerCall {
				attempts, err := run(provider.EndpointPolicy(tc.app, method), tc.answer)
				require.Equal(t, want, attempts, "call %d", i+1)
				require.Error(t, err)
				if i == last {
					assert.ErrorIs(t, err, breaker.ErrOpenState, "call %d", i+1)
				}
			}
			// Another method path of the same app has its own breaker.
			attempts, _ := run(provider.EndpointPolicy(tc.app, method+"/other"), tc.answer)
			assert.Equal(t, tc.attemptsPerCall[0], attempts)
		})
	}
}

// TestEdgeNeverOpens: in the gateway's sidecar a run of failures opens
// nothing; every call makes all its attempts.
func TestEdgeNeverOpens(t *testing.T) {
	provider := newProvider(t, scaledSpec(t, edge, retryScale))
	tests := []struct {
		app          string
		answer       answer
		wantAttempts int32
	}{
		{"users", status(404), 1},
		{"users", status(503), 2},
		{"products", unreachable, 2},
		{"orders", status(409), 1},
		{"payments", status(503), 1},
		{"notifications", status(500), 1},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			method := tc.app + ":" + t.Name()
			for i := range 20 {
				attempts, err := run(provider.EndpointPolicy(tc.app, method), tc.answer)
				require.Equal(t, tc.wantAttempts, attempts, "call %d", i+1)
				require.NotErrorIs(t, err, breaker.ErrOpenState)
				require.ErrorIs(t, err, errApp)
			}
		})
	}
}

// TestComponentRetries counts the attempts of the component policies:
// state stores and publishing (outbound), and delivering an event to a
// subscriber (inbound), after which Dapr sends it to the dead-letter topic.
func TestComponentRetries(t *testing.T) {
	provider := newProvider(t, scaledSpec(t, services, retryScale))
	retriable := errors.New(`app answered {"status": "RETRY"}`)

	tests := []struct {
		name         string
		policy       *daprres.PolicyDefinition
		answer       answer
		wantAttempts int32
	}{
		{"statestore", provider.ComponentOutboundPolicy("statestore", daprres.Statestore), unreachable, 3},
		{"statestore timeout", provider.ComponentOutboundPolicy("statestore", daprres.Statestore), hang, 3},
		{"orderstore", provider.ComponentOutboundPolicy("orderstore", daprres.Statestore), unreachable, 3},
		{"orderpubsub publish", provider.ComponentOutboundPolicy("orderpubsub", daprres.Pubsub), unreachable, 3},
		{"delivery answered 500", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), status(500), 13},
		{"delivery answered 503", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), status(503), 13},
		{"delivery answered RETRY", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), func(context.Context, int32) error { return retriable }, 13},
		{"delivery timed out", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), hang, 13},
		{"delivery answered 400 goes to the dead letters at once", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), status(400), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			attempts, err := run(tc.policy, tc.answer)
			assert.Equal(t, tc.wantAttempts, attempts)
			assert.Error(t, err)
		})
	}
}
