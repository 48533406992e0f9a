package resiliency

import (
	"context"
	"errors"
	"testing"

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
// breaker, timeout) and counts the attempts that reach the app.
func TestServiceInvocationRetries(t *testing.T) {
	provider := newProvider(t, scaledSpec(t, retryScale))

	tests := []struct {
		name         string
		app          string
		answer       answer
		wantAttempts int32
		wantErr      error
	}{
		// invokeRetry: a persistently failing call is tried twice in all.
		{name: "503 is retried", app: "users", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "502 is retried", app: "users", answer: status(502), wantAttempts: 2, wantErr: errApp},
		{name: "504 is retried", app: "users", answer: status(504), wantAttempts: 2, wantErr: errApp},
		{name: "500 is not retried", app: "users", answer: status(500), wantAttempts: 1, wantErr: errApp},
		{name: "400 is not retried", app: "users", answer: status(400), wantAttempts: 1, wantErr: errApp},
		{name: "404 is not retried", app: "users", answer: status(404), wantAttempts: 1, wantErr: errApp},
		{name: "409 is not retried", app: "users", answer: status(409), wantAttempts: 1, wantErr: errApp},
		{name: "422 is not retried", app: "users", answer: status(422), wantAttempts: 1, wantErr: errApp},
		{name: "429 is not retried", app: "users", answer: status(429), wantAttempts: 1, wantErr: errApp},
		{name: "a 503 then a success", app: "users", answer: failThenSucceed(503), wantAttempts: 2},
		{name: "products 503 is retried", app: "products", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "products reservation 409 is not retried", app: "products", answer: status(409), wantAttempts: 1, wantErr: errApp},
		{name: "notifications 503 is retried", app: "notifications", answer: status(503), wantAttempts: 2, wantErr: errApp},
		{name: "orders 503 is not retried", app: "orders", answer: status(503), wantAttempts: 1, wantErr: errApp},
		{name: "payments 503 is not retried", app: "payments", answer: status(503), wantAttempts: 1, wantErr: errApp},
		// Outside `matching`: a call that got no answer and a timed out call
		// are retried whatever the status list says. A timed out POST may
		// have been carried out, hence no retry on orders.
		{name: "unreachable is retried", app: "users", answer: unreachable, wantAttempts: 2, wantErr: errApp},
		{name: "timeout is retried", app: "users", answer: hang, wantAttempts: 2, wantErr: context.DeadlineExceeded},
		{name: "orders unreachable is tried once", app: "orders", answer: unreachable, wantAttempts: 1, wantErr: errApp},
		{name: "orders timeout is tried once", app: "orders", answer: hang, wantAttempts: 1, wantErr: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// Dapr keeps one breaker per method path; a path per case keeps
			// the cases' failures apart.
			policy := provider.EndpointPolicy(tc.app, tc.app+":"+t.Name())
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

// TestRetriesCountTowardsTrips shows the layering retry(breaker(timeout)):
// every attempt is counted by the breaker of the called method path, and an
// open breaker ends the retries at once.
func TestRetriesCountTowardsTrips(t *testing.T) {
	provider := newProvider(t, scaledSpec(t, retryScale))

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
		{name: "users 503", app: "users", answer: status(503), attemptsPerCall: []int32{2, 1, 0}},
		// Dapr counts any status outside 200-399, so 404s trip it too.
		{name: "users 404", app: "users", answer: status(404), attemptsPerCall: []int32{1, 1, 1, 0}},
		// defaultBreaker trips at 5.
		{name: "products 503", app: "products", answer: status(503), attemptsPerCall: []int32{2, 2, 1, 0}},
		{name: "orders 503", app: "orders", answer: status(503), attemptsPerCall: []int32{1, 1, 1, 1, 1, 0}},
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

// TestComponentRetries counts the attempts of the component policies:
// state stores and publishing (outbound), and delivering an event to a
// subscriber (inbound), after which Dapr sends it to the dead-letter topic.
func TestComponentRetries(t *testing.T) {
	provider := newProvider(t, scaledSpec(t, retryScale))
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
		{"delivery answered 500", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), status(500), 4},
		{"delivery answered 503", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), status(503), 4},
		{"delivery answered RETRY", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), func(context.Context, int32) error { return retriable }, 4},
		{"delivery timed out", provider.ComponentInboundPolicy("orderpubsub", daprres.Pubsub), hang, 4},
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
