package resiliency

import (
	"errors"
	"fmt"
	"maps"
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
	orig := bothFiles(t)

	tests := []struct {
		name string
		line string // a regexp of a whole line (after its indentation, not a comment)
		nth  int    // which match to change, from 0
		new  string
		// daprdIgnores: daprd's own lenient decoding accepts the mistake and
		// drops the field (or the whole document), leaving the policy at
		// Dapr's default.
		daprdIgnores bool
	}{
		{"misspelt breaker field", `maxRequests:.*`, 0, "maxRequest: 3", true},
		{"misspelt matching field", `httpStatusCodes:.*`, 0, `httpStatusCode: "503"`, true},
		{"misspelt policy group", `circuitBreakers:.*`, 0, "circuitBreaker:", true},
		{"misspelt target field", `retry:.*`, 0, "retries: invokeRetry", true},
		{"misspelt direction", `inbound:.*`, 0, "inbond:", true},
		{"number as a word", `maxRetries:.*`, 0, "maxRetries: one", false},
		{"misspelt target field of the edge", `timeout: placeOrder`, 0, "timout: placeOrder", true},
		{"misspelt retry field of the edge", `maxRetries:.*`, 3, "maxRetry: 1", true},
		{"misspelt kind of the edge", `kind: Resiliency`, 1, "kind: Resilience", true},
		{"misspelt scopes of the edge", `scopes:`, 1, "scope:", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := regexp.MustCompile(`(?m)^[ \t]*(` + tc.line + `)$`)
			all := key.FindAllSubmatchIndex(orig, -1)
			require.Greater(t, len(all), tc.nth, "resiliency.yaml has no line %d matching %s", tc.nth+1, tc.line)
			loc := all[tc.nth]
			mutated := slices.Concat(orig[:loc[2]], []byte(tc.new), orig[loc[3]:])

			_, err := Parse(mutated)
			assert.Error(t, err)
			lenientErr := error(nil)
			for _, doc := range splitDocuments(mutated) {
				var lenient v1alpha1.Resiliency
				lenientErr = errors.Join(lenientErr, yaml.Unmarshal(doc, &lenient))
			}
			assert.Equal(t, tc.daprdIgnores, lenientErr == nil, "daprd's decoding: %v", lenientErr)
		})
	}
}

func TestParse(t *testing.T) {
	const doc = "apiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: %s\nspec: {}\n"
	tests := []struct {
		name      string
		yaml      string
		wantNames []string // nil: an error
	}{
		{name: "one document", yaml: fmt.Sprintf(doc, "a"), wantNames: []string{"a"}},
		{name: "two documents", yaml: fmt.Sprintf(doc, "a") + "---\n" + fmt.Sprintf(doc, "b"), wantNames: []string{"a", "b"}},
		{name: "separator with a comment, leading separator, comment-only document", wantNames: []string{"a", "b"},
			yaml: "---\n# only a comment\n--- # a\n" + fmt.Sprintf(doc, "a") + "---\n" + fmt.Sprintf(doc, "b") + "---\n"},
		{name: "no document", yaml: "# nothing\n---\n"},
		{name: "empty", yaml: ""},
		{name: "two documents with one name", yaml: fmt.Sprintf(doc, "a") + "---\n" + fmt.Sprintf(doc, "a")},
		{name: "no name", yaml: fmt.Sprintf(doc, "")},
		{name: "another kind after a Resiliency", yaml: fmt.Sprintf(doc, "a") + "---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: b\n"},
		{name: "not YAML", yaml: fmt.Sprintf(doc, "a") + "---\n: [\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			docs, err := Parse([]byte(tc.yaml))
			if tc.wantNames == nil {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, d := range docs {
				names = append(names, d.Name)
			}
			assert.Equal(t, tc.wantNames, names)
		})
	}
}

// resourcesDir is the folder every sidecar gets as a resources path (dapr.yaml,
// the e2e harness); it links to resiliency.yaml.
const resourcesDir = "../../dapr/resources"

// TestDaprdLoadsItsDocumentForEveryApp loads the sidecars' resources folder
// with the function daprd runs at start for resources on disk
// (LoadLocalResiliency), once per app id, and requires that each sidecar
// gets the one document scoped to it. daprd logs nothing when a document is
// left out: the sidecar just runs without those policies.
func TestDaprdLoadsItsDocumentForEveryApp(t *testing.T) {
	want := map[string]string{
		"gateway": edge,
		"users":   services, "products": services, "orders": services, "payments": services, "notifications": services,
	}
	for _, app := range slices.Sorted(maps.Keys(want)) {
		t.Run(app, func(t *testing.T) {
			var got []string
			for _, res := range daprres.LoadLocalResiliency(quietLogger(), app, resourcesDir) {
				got = append(got, res.Name)
			}
			assert.Equal(t, []string{want[app]}, got,
				"daprd 1.18 reads only the first YAML document of each resiliency file at start (LoadLocalResiliency): "+
					"the documents must be in files of their own")
		})
	}
}

func TestDaprDecodesEveryPolicy(t *testing.T) {
	for _, name := range documents {
		t.Run(name+" as it is", func(t *testing.T) {
			// daprd runs this at start; on an error it logs "Could not read
			// resiliency policy" and carries on without the resource.
			assert.NoError(t, daprres.New(quietLogger()).DecodeConfiguration(loadSpec(t, name)))
		})
	}

	tests := []struct {
		name string
		doc  string
		edit func(p *v1alpha1.Policies)
	}{
		{name: "status code out of range", doc: services, edit: func(p *v1alpha1.Policies) {
			r := p.Retries["invokeRetry"]
			r.Matching = &v1alpha1.RetryMatching{HTTPStatusCodes: "502,600"}
			p.Retries["invokeRetry"] = r
		}},
		{name: "trip that is not an expression", doc: services, edit: func(p *v1alpha1.Policies) {
			cb := p.CircuitBreakers["defaultBreaker"]
			cb.Trip = "consecutiveFailures >="
			p.CircuitBreakers["defaultBreaker"] = cb
		}},
		{name: "duration without a number", doc: services, edit: func(p *v1alpha1.Policies) {
			p.Timeouts["invoke"] = "soon"
		}},
		{name: "edge duration without a number", doc: edge, edit: func(p *v1alpha1.Policies) {
			p.Timeouts["placeOrder"] = "soon"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.doc+": "+tc.name, func(t *testing.T) {
			res := loadSpec(t, tc.doc)
			tc.edit(&res.Spec.Policies)
			assert.Error(t, daprres.New(quietLogger()).DecodeConfiguration(res))
		})
	}
}

func TestTargetsNameExistingPolicies(t *testing.T) {
	for _, res := range loadSpecs(t) {
		t.Run(res.Name, func(t *testing.T) {
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

			// A policy no target of its document names is dead configuration:
			// policies are not shared between documents.
			for name := range p.Timeouts {
				assert.True(t, used["timeouts."+name], "timeout %q is not used by any target", name)
			}
			for name := range p.Retries {
				assert.True(t, used["retries."+name], "retry %q is not used by any target", name)
			}
			for name := range p.CircuitBreakers {
				assert.True(t, used["circuitBreakers."+name], "circuit breaker %q is not used by any target", name)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	t.Run(services, func(t *testing.T) {
		res := loadSpec(t, services)
		// The calls services make to each other: orders -> users, products;
		// payments -> orders.
		assert.Equal(t, map[string]v1alpha1.EndpointPolicyNames{
			"users":    {Timeout: "invoke", Retry: "invokeRetry", CircuitBreaker: "usersBreaker"},
			"products": {Timeout: "invoke", Retry: "invokeRetry", CircuitBreaker: "defaultBreaker"},
			"orders":   {Timeout: "invoke", Retry: "invokeRetry", CircuitBreaker: "defaultBreaker"},
		}, res.Spec.Targets.Apps)

		outbound := v1alpha1.PolicyNames{Timeout: "store", Retry: "outboundRetry"}
		assert.Equal(t, map[string]v1alpha1.ComponentPolicyNames{
			"statestore":   {Outbound: outbound},
			"paymentstore": {Outbound: outbound},
			"orderstore":   {Outbound: outbound},
			"orderpubsub":  {Outbound: v1alpha1.PolicyNames{Timeout: "publish", Retry: "outboundRetry"}, Inbound: v1alpha1.PolicyNames{Timeout: "deliver", Retry: "deliverRetry"}},
		}, res.Spec.Targets.Components)
	})
	t.Run(edge, func(t *testing.T) {
		res := loadSpec(t, edge)
		// Every app the gateway forwards to, none with a breaker.
		assert.Equal(t, map[string]v1alpha1.EndpointPolicyNames{
			"users":         {Timeout: "register", Retry: "invokeRetry"},
			"products":      {Timeout: "invoke", Retry: "invokeRetry"},
			"orders":        {Timeout: "placeOrder"},
			"payments":      {Timeout: "payment"},
			"notifications": {Timeout: "invoke", Retry: "invokeRetry"},
		}, res.Spec.Targets.Apps)
		// The gateway uses no component.
		assert.Empty(t, res.Spec.Targets.Components)
	})
}

// TestPolicies pins every number of both documents: a change to a timeout,
// a retry or a breaker must be made here too, on purpose.
func TestPolicies(t *testing.T) {
	one, two, twelve := 1, 2, 12
	invokeRetry := v1alpha1.Retry{
		Policy: "constant", Duration: "200ms", MaxRetries: &one,
		Matching: &v1alpha1.RetryMatching{HTTPStatusCodes: "502,503,504", GRPCStatusCodes: "4,14"},
	}
	tests := []struct {
		doc      string
		timeouts map[string]time.Duration
		retries  map[string]v1alpha1.Retry
		breakers map[string]v1alpha1.CircuitBreaker
	}{
		{
			doc: services,
			timeouts: map[string]time.Duration{
				"invoke": 5 * time.Second, "store": 5 * time.Second, "publish": 5 * time.Second, "deliver": 3 * time.Second,
			},
			retries: map[string]v1alpha1.Retry{
				"invokeRetry":   invokeRetry,
				"outboundRetry": {Policy: "constant", Duration: "100ms", MaxRetries: &two},
				"deliverRetry": {Policy: "exponential", MaxInterval: "15s", MaxRetries: &twelve,
					Matching: &v1alpha1.RetryMatching{HTTPStatusCodes: "500-599", GRPCStatusCodes: "2,4,12-15"}},
			},
			breakers: map[string]v1alpha1.CircuitBreaker{
				"defaultBreaker": {Trip: "consecutiveFailures >= 5", Timeout: "30s", MaxRequests: 3},
				"usersBreaker":   {Trip: "consecutiveFailures >= 3", Timeout: "60s", MaxRequests: 3},
			},
		},
		{
			doc:      edge,
			timeouts: map[string]time.Duration{"invoke": 5 * time.Second, "placeOrder": 15 * time.Second, "payment": 30 * time.Second, "register": 20 * time.Second},
			retries:  map[string]v1alpha1.Retry{"invokeRetry": invokeRetry},
		},
	}
	for _, tc := range tests {
		t.Run(tc.doc, func(t *testing.T) {
			p := loadSpec(t, tc.doc).Spec.Policies
			timeouts := map[string]time.Duration{}
			for name, v := range p.Timeouts {
				timeouts[name] = daprDuration(t, v)
			}
			assert.Equal(t, tc.timeouts, timeouts, "timeouts")
			assert.Equal(t, tc.retries, p.Retries, "retries")
			assert.Equal(t, tc.breakers, p.CircuitBreakers, "circuit breakers")
		})
	}
}

// TestEdgeHasNoBreaker: Dapr counts every answer outside 200-399 as a
// failure, so a breaker in the gateway's sidecar would let one client's
// 404s and 409s open the circuit for every other client.
func TestEdgeHasNoBreaker(t *testing.T) {
	res := loadSpec(t, edge)
	assert.Empty(t, res.Spec.Policies.CircuitBreakers)
	for app, target := range res.Spec.Targets.Apps {
		assert.Empty(t, target.CircuitBreaker, "app %s", app)
	}
	for comp, target := range res.Spec.Targets.Components {
		assert.Empty(t, target.Inbound.CircuitBreaker, "component %s inbound", comp)
		assert.Empty(t, target.Outbound.CircuitBreaker, "component %s outbound", comp)
	}
	assert.Empty(t, res.Spec.Targets.Actors)
}

func TestNoRetryWhereAReplayCouldDuplicate(t *testing.T) {
	tests := []struct {
		doc, app, why string
	}{
		{edge, "orders", "POST /orders gets a new order id per attempt: a replay after a timeout places a second order"},
		{edge, "payments", "payments moves money; the client retries with its own idempotency key"},
	}
	for _, tc := range tests {
		t.Run(tc.doc+" "+tc.app, func(t *testing.T) {
			target, ok := loadSpec(t, tc.doc).Spec.Targets.Apps[tc.app]
			require.True(t, ok, "no target for %s: Dapr's built-in retry of unreachable targets would apply", tc.app)
			assert.Empty(t, target.Retry, tc.why)
		})
	}
	// No service calls payments; should one start to, it must not retry either.
	for _, res := range loadSpecs(t) {
		assert.Empty(t, res.Spec.Targets.Apps["payments"].Retry, "%s: payments", res.Name)
	}
}

func TestScopes(t *testing.T) {
	// App targets apply in the callers' sidecars (orders, payments; the
	// gateway for edge), component targets in every app that uses a store or
	// the broker. A document with no scopes would apply to every sidecar.
	want := map[string][]string{
		services: {"users", "products", "orders", "payments", "notifications"},
		edge:     {"gateway"},
	}
	seen := map[string]string{}
	for _, res := range loadSpecs(t) {
		assert.ElementsMatch(t, want[res.Name], res.Scopes, res.Name)
		for _, app := range res.Scopes {
			if other, ok := seen[app]; ok {
				t.Errorf("%s is in the scopes of both %s and %s", app, other, res.Name)
			}
			seen[app] = res.Name
		}
	}
	assert.ElementsMatch(t,
		[]string{"gateway", "users", "products", "orders", "payments", "notifications"},
		slices.Collect(maps.Keys(seen)), "every app gets exactly one document")
}

func TestBreakersAreTheTutorials(t *testing.T) {
	res := loadSpec(t, services)
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
	res := loadSpec(t, services)
	require.NotEmpty(t, res.Spec.Targets.Apps)
	for app, target := range res.Spec.Targets.Apps {
		want := "defaultBreaker"
		if app == "users" {
			want = "usersBreaker" // the tutorial's ResilientServiceClient
		}
		assert.Equal(t, want, target.CircuitBreaker, app)
	}
}

func TestOneCallCannotTripABreaker(t *testing.T) {
	res := loadSpec(t, services)
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

// Every retry is bounded. Calls between services and to components retry
// at most 3 times, at once (constant, under a second): a caller waits for
// them. Delivering an event waits out a subscriber's passing outage instead
// (deliverRetry: exponential, see TestDeliveryOutlastsAStoreRestart).
func TestRetriesAreBounded(t *testing.T) {
	for _, res := range loadSpecs(t) {
		for name, r := range res.Spec.Policies.Retries {
			t.Run(res.Name+" "+name, func(t *testing.T) {
				require.NotNil(t, r.MaxRetries, "no maxRetries: Dapr retries forever")
				assert.Positive(t, *r.MaxRetries)
				if name == "deliverRetry" {
					assert.Equal(t, "exponential", r.Policy)
					assert.LessOrEqual(t, *r.MaxRetries, 20)
					return
				}
				assert.LessOrEqual(t, *r.MaxRetries, 3)
				assert.Equal(t, "constant", r.Policy)
				assert.LessOrEqual(t, daprDuration(t, r.Duration), time.Second)
			})
		}
	}
}

func TestMatching(t *testing.T) {
	docs := loadSpecs(t)
	tests := []struct {
		doc, retry string
		retried    []int // HTTP statuses retried; every other status of 100-599 is not
	}{
		{services, "invokeRetry", []int{502, 503, 504}},
		{services, "deliverRetry", statusRange(500, 599)},
		{edge, "invokeRetry", []int{502, 503, 504}},
	}
	// Every retry with a status list is in the table.
	var withMatching []string
	for _, res := range docs {
		for name, r := range res.Spec.Policies.Retries {
			if r.Matching != nil {
				withMatching = append(withMatching, res.Name+" "+name)
			}
		}
	}
	var listed []string
	for _, tc := range tests {
		listed = append(listed, tc.doc+" "+tc.retry)
	}
	assert.ElementsMatch(t, listed, withMatching)

	for _, tc := range tests {
		t.Run(tc.doc+" "+tc.retry, func(t *testing.T) {
			r, ok := byName(t, docs, tc.doc).Spec.Policies.Retries[tc.retry]
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

// An event whose subscriber answers RETRY (its store is down) is retried for
// longer than a store takes to restart (the chaos tests restart PostgreSQL
// and cut it for 10 s) before it goes to the dead letters, and no single
// wait is longer than the Redis component's processingTimeout, after which
// the broker delivers the event again anyway.
func TestDeliveryOutlastsAStoreRestart(t *testing.T) {
	res := loadSpec(t, services)
	inbound := res.Spec.Targets.Components["orderpubsub"].Inbound
	retry := res.Spec.Policies.Retries[inbound.Retry]
	require.NotNil(t, retry.MaxRetries)
	require.Equal(t, "exponential", retry.Policy)

	// Dapr's exponential backoff: 500 ms, growing 1.5x, capped at maxInterval.
	maxInterval := daprDuration(t, retry.MaxInterval)
	var waited time.Duration
	next := 500 * time.Millisecond
	for range *retry.MaxRetries {
		waited += min(next, maxInterval)
		next = next * 3 / 2
	}
	assert.GreaterOrEqual(t, waited, time.Minute, "a subscriber's store may be down this long before an event is dead-lettered")
	assert.LessOrEqual(t, waited, 3*time.Minute, "an event that can never be handled reaches the dead letters in minutes")

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
	assert.LessOrEqual(t, maxInterval, processing)
}

func TestDurationsHaveUnits(t *testing.T) {
	// Dapr reads a bare number as milliseconds: "30" would be 30ms.
	for _, res := range loadSpecs(t) {
		for path, v := range leaves(t, res) {
			if !durationPath.MatchString(path) {
				continue
			}
			s, ok := v.(string)
			require.True(t, ok, path)
			_, err := time.ParseDuration(s)
			assert.NoError(t, err, "%s %s: %q", res.Name, path, s)
		}
	}
}

func statusRange(from, to int) []int {
	var out []int
	for c := from; c <= to; c++ {
		out = append(out, c)
	}
	return out
}
