package resiliency

import (
	"os"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	invokev1 "github.com/dapr/dapr/pkg/messaging/v1"
	daprres "github.com/dapr/dapr/pkg/resiliency"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"sigs.k8s.io/yaml"
)

func TestLoadIsStrict(t *testing.T) {
	orig, err := os.ReadFile(resiliencyFile)
	require.NoError(t, err)

	tests := []struct {
		name string
		old  string // the first key of this name (not in a comment) becomes new
		new  string
		// daprdIgnores: daprd's own lenient decoding accepts the mistake and
		// drops the field, leaving the policy at Dapr's default.
		daprdIgnores bool
	}{
		{"misspelt breaker field", "maxRequests", "maxRequest: 3", true},
		{"misspelt matching field", "httpStatusCodes", `httpStatusCode: "503"`, true},
		{"misspelt policy group", "circuitBreakers", "circuitBreaker:", true},
		{"misspelt target field", "retry", "retries: invokeRetry", true},
		{"misspelt direction", "inbound", "inbond:", true},
		{"number as a word", "maxRetries", "maxRetries: one", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := regexp.MustCompile(`(?m)^\s*(` + tc.old + `:.*)$`)
			loc := key.FindSubmatchIndex(orig)
			require.NotNil(t, loc, "resiliency.yaml has no key %s", tc.old)
			mutated := slices.Concat(orig[:loc[2]], []byte(tc.new), orig[loc[3]:])

			_, err := Parse(mutated)
			assert.Error(t, err)
			var lenient v1alpha1.Resiliency
			assert.Equal(t, tc.daprdIgnores, yaml.Unmarshal(mutated, &lenient) == nil)
		})
	}
}

func TestDaprDecodesEveryPolicy(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(p *v1alpha1.Policies)
		wantErr bool
	}{
		{name: "resiliency.yaml as it is", edit: func(*v1alpha1.Policies) {}},
		{name: "status code out of range", wantErr: true, edit: func(p *v1alpha1.Policies) {
			r := p.Retries["invokeRetry"]
			r.Matching = &v1alpha1.RetryMatching{HTTPStatusCodes: "502,600"}
			p.Retries["invokeRetry"] = r
		}},
		{name: "trip that is not an expression", wantErr: true, edit: func(p *v1alpha1.Policies) {
			cb := p.CircuitBreakers["defaultBreaker"]
			cb.Trip = "consecutiveFailures >="
			p.CircuitBreakers["defaultBreaker"] = cb
		}},
		{name: "duration without a number", wantErr: true, edit: func(p *v1alpha1.Policies) {
			p.Timeouts["invoke"] = "soon"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := loadSpec(t)
			tc.edit(&res.Spec.Policies)

			// daprd runs this at start; on an error it logs "Could not read
			// resiliency policy" and carries on without the resource.
			err := daprres.New(quietLogger()).DecodeConfiguration(res)
			if tc.wantErr {
				assert.Error(t, err)
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

func TestTargetsNameExistingPolicies(t *testing.T) {
	res := loadSpec(t)
	p := res.Spec.Policies
	used := map[string]bool{}
	check := func(t *testing.T, target string, names v1alpha1.PolicyNames) {
		t.Helper()
		if names.Timeout != "" {
			assert.Contains(t, p.Timeouts, names.Timeout, "%s: timeout", target)
			used["timeouts."+names.Timeout] = true
		}
		if names.Retry != "" {
			assert.Contains(t, p.Retries, names.Retry, "%s: retry", target)
			used["retries."+names.Retry] = true
		}
		if names.CircuitBreaker != "" {
			assert.Contains(t, p.CircuitBreakers, names.CircuitBreaker, "%s: circuitBreaker", target)
			used["circuitBreakers."+names.CircuitBreaker] = true
		}
	}
	for app, names := range res.Spec.Targets.Apps {
		check(t, "app "+app, v1alpha1.PolicyNames{Timeout: names.Timeout, Retry: names.Retry, CircuitBreaker: names.CircuitBreaker})
	}
	for comp, names := range res.Spec.Targets.Components {
		check(t, "component "+comp+" inbound", names.Inbound)
		check(t, "component "+comp+" outbound", names.Outbound)
	}
	assert.Empty(t, res.Spec.Targets.Actors)

	// A policy no target names is dead configuration.
	for name := range p.Timeouts {
		assert.True(t, used["timeouts."+name], "timeout %q is not used by any target", name)
	}
	for name := range p.Retries {
		assert.True(t, used["retries."+name], "retry %q is not used by any target", name)
	}
	for name := range p.CircuitBreakers {
		assert.True(t, used["circuitBreakers."+name], "circuit breaker %q is not used by any target", name)
	}
}

func TestTargets(t *testing.T) {
	res := loadSpec(t)

	assert.Equal(t, map[string]v1alpha1.EndpointPolicyNames{
		"users":         {Timeout: "invoke", Retry: "invokeRetry", CircuitBreaker: "usersBreaker"},
		"products":      {Timeout: "invoke", Retry: "invokeRetry", CircuitBreaker: "defaultBreaker"},
		"orders":        {Timeout: "placeOrder", CircuitBreaker: "defaultBreaker"},
		"payments":      {Timeout: "invoke", CircuitBreaker: "defaultBreaker"},
		"notifications": {Timeout: "invoke", Retry: "invokeRetry", CircuitBreaker: "defaultBreaker"},
	}, res.Spec.Targets.Apps)

	outbound := v1alpha1.PolicyNames{Timeout: "store", Retry: "outboundRetry"}
	assert.Equal(t, map[string]v1alpha1.ComponentPolicyNames{
		"statestore":  {Outbound: outbound},
		"orderstore":  {Outbound: outbound},
		"orderpubsub": {Outbound: v1alpha1.PolicyNames{Timeout: "publish", Retry: "outboundRetry"}, Inbound: v1alpha1.PolicyNames{Timeout: "deliver", Retry: "deliverRetry"}},
	}, res.Spec.Targets.Components)
}

func TestNoRetryWhereAReplayCouldDuplicate(t *testing.T) {
	res := loadSpec(t)
	tests := []struct {
		app, why string
	}{
		{"orders", "POST /orders gets a new order id per attempt: a replay after a timeout places a second order"},
		{"payments", "payments moves money; the client retries with its own idempotency key"},
	}
	for _, tc := range tests {
		t.Run(tc.app, func(t *testing.T) {
			target, ok := res.Spec.Targets.Apps[tc.app]
			require.True(t, ok, "no target for %s: Dapr's built-in retry of unreachable targets would apply", tc.app)
			assert.Empty(t, target.Retry, tc.why)
		})
	}
}

func TestScopesAreEveryApp(t *testing.T) {
	// App targets apply in the callers' sidecars (gateway, orders);
	// component targets in every app that uses a store or the broker.
	assert.ElementsMatch(t,
		[]string{"gateway", "users", "products", "orders", "payments", "notifications"},
		loadSpec(t).Scopes)
}

func TestBreakersAreTheTutorials(t *testing.T) {
	res := loadSpec(t)
	require.Len(t, res.Spec.Policies.CircuitBreakers, len(tutorialBreakers))
	for _, tc := range tutorialBreakers {
		t.Run(tc.policy, func(t *testing.T) {
			spec, ok := res.Spec.Policies.CircuitBreakers[tc.policy]
			require.True(t, ok)
			cb := newBreaker(t, res, tc.policy)

			threshold := tripThreshold(t, cb.Trip)
			assert.Equal(t, tc.failureThreshold, threshold, "failure_threshold")
			// In a row: earlier failures followed by a success do not count.
			lots := int64(1000)
			assert.False(t, trips(t, cb.Trip, tripCounts{
				requests: lots, totalFailures: lots, totalSuccesses: lots,
				consecutiveFailures: int64(threshold - 1),
			}), "trips on total failures rather than failures in a row")
			assert.True(t, trips(t, cb.Trip, tripCounts{
				requests: lots, totalFailures: int64(threshold), totalSuccesses: lots,
				consecutiveFailures: int64(threshold),
			}), "does not trip on failures in a row after many successes")

			assert.Equal(t, tc.recoveryTimeout, cb.Timeout, "recovery_timeout")
			assert.Equal(t, uint32(tc.halfOpenMaxCalls), cb.MaxRequests, "half_open_max_calls")
			// As in the tutorial, failures are forgotten on a success only.
			assert.Empty(t, spec.Interval)
			assert.Zero(t, cb.Interval)
		})
	}
}

func TestBreakerPerTarget(t *testing.T) {
	res := loadSpec(t)
	for app, target := range res.Spec.Targets.Apps {
		want := "defaultBreaker"
		if app == "users" {
			want = "usersBreaker" // the tutorial's ResilientServiceClient
		}
		assert.Equal(t, want, target.CircuitBreaker, app)
	}
}

func TestOneCallCannotTripABreaker(t *testing.T) {
	res := loadSpec(t)
	for app, target := range res.Spec.Targets.Apps {
		if target.Retry == "" {
			continue
		}
		t.Run(app, func(t *testing.T) {
			r := res.Spec.Policies.Retries[target.Retry]
			require.NotNil(t, r.MaxRetries, "%s: unbounded retries", target.Retry)
			attempts := *r.MaxRetries + 1
			threshold := tripThreshold(t, newBreaker(t, res, target.CircuitBreaker).Trip)
			assert.Less(t, attempts, threshold,
				"a single call under %s makes %d attempts, enough to open %s", target.Retry, attempts, target.CircuitBreaker)
		})
	}
}

func TestRetriesAreBounded(t *testing.T) {
	for name, r := range loadSpec(t).Spec.Policies.Retries {
		t.Run(name, func(t *testing.T) {
			require.NotNil(t, r.MaxRetries, "no maxRetries: Dapr retries forever")
			assert.Positive(t, *r.MaxRetries)
			assert.LessOrEqual(t, *r.MaxRetries, 3)
			assert.Equal(t, "constant", r.Policy)
			assert.LessOrEqual(t, daprDuration(t, r.Duration), time.Second)
		})
	}
}

func TestMatching(t *testing.T) {
	res := loadSpec(t)
	tests := []struct {
		retry   string
		retried []int // HTTP statuses retried; every other status of 100-599 is not
	}{
		{"invokeRetry", []int{502, 503, 504}},
		{"deliverRetry", statusRange(500, 599)},
	}
	for _, tc := range tests {
		t.Run(tc.retry, func(t *testing.T) {
			r, ok := res.Spec.Policies.Retries[tc.retry]
			require.True(t, ok)
			require.NotNil(t, r.Matching)
			match, err := daprres.ParseRetryConditionMatch(r.Matching)
			require.NoError(t, err)

			var retried []int
			for code := 100; code <= 599; code++ {
				if match.ErrorNeedRetry(daprres.NewCodeError(int32(code), errApp)) {
					retried = append(retried, code)
				}
			}
			assert.Equal(t, tc.retried, retried, "HTTP statuses retried")
			// The gRPC list says the same as the HTTP one: a gRPC code is
			// retried exactly when the HTTP status Dapr maps it to is.
			for code := codes.OK; code <= codes.Unauthenticated; code++ {
				http := invokev1.HTTPStatusFromCode(code)
				assert.Equal(t,
					match.ErrorNeedRetry(daprres.NewCodeError(int32(http), errApp)),
					match.ErrorNeedRetry(daprres.NewCodeError(int32(code), errApp)),
					"gRPC %s (HTTP %d)", code, http)
			}
		})
	}
}

func TestDeliveryFitsTheBrokersProcessingTimeout(t *testing.T) {
	res := loadSpec(t)
	inbound := res.Spec.Targets.Components["orderpubsub"].Inbound
	retry := res.Spec.Policies.Retries[inbound.Retry]
	require.NotNil(t, retry.MaxRetries)
	retries := time.Duration(*retry.MaxRetries)
	worst := (retries+1)*daprDuration(t, res.Spec.Policies.Timeouts[inbound.Timeout]) + retries*daprDuration(t, retry.Duration)

	// Redis Streams hands a message nobody acknowledged within
	// processingTimeout to another consumer: all attempts must end before.
	raw, err := os.ReadFile("../../components/pubsub/redis/orderpubsub.yaml")
	require.NoError(t, err)
	var component struct {
		Spec struct {
			Metadata []struct{ Name, Value string }
		}
	}
	require.NoError(t, yaml.Unmarshal(raw, &component))
	var processing time.Duration
	for _, m := range component.Spec.Metadata {
		if m.Name == "processingTimeout" {
			processing = daprDuration(t, m.Value)
		}
	}
	require.NotZero(t, processing, "orderpubsub has no processingTimeout")
	assert.Less(t, worst, processing)
}

func TestDurationsHaveUnits(t *testing.T) {
	// Dapr reads a bare number as milliseconds: "30" would be 30ms.
	for path, v := range leaves(t, loadSpec(t)) {
		if !durationPath.MatchString(path) {
			continue
		}
		s, ok := v.(string)
		require.True(t, ok, path)
		_, err := time.ParseDuration(s)
		assert.NoError(t, err, "%s: %q", path, s)
	}
}

func statusRange(from, to int) []int {
	var out []int
	for c := from; c <= to; c++ {
		out = append(out, c)
	}
	return out
}
