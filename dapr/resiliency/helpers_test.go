package resiliency

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dapr/dapr/pkg/apis/resiliency/v1alpha1"
	"github.com/dapr/dapr/pkg/expr"
	daprres "github.com/dapr/dapr/pkg/resiliency"
	"github.com/dapr/dapr/pkg/resiliency/breaker"
	"github.com/dapr/kit/config"
	"github.com/dapr/kit/logger"
	"github.com/stretchr/testify/require"
)

// resiliencyFile holds the services' document and edgeFile the gateway's;
// the sidecars load both from dapr/resources/.
const (
	resiliencyFile = "../../resiliency.yaml"
	edgeFile       = "../resources/resiliency-edge.yaml"
)

// tutorialBreaker is one call of the tutorial's CircuitBreaker(...) and the
// breaker policy of resiliency.yaml that implements it.
type tutorialBreaker struct {
	policy           string
	failureThreshold int           // failure_threshold
	recoveryTimeout  time.Duration // recovery_timeout
	halfOpenMaxCalls int           // half_open_max_calls
}

// tutorialBreakers are the tutorial's numbers: CircuitBreaker() with its
// defaults, and the users client's CircuitBreaker(failure_threshold=3,
// recovery_timeout=60), whose half_open_max_calls stays at the default.
var tutorialBreakers = []tutorialBreaker{
	{policy: "defaultBreaker", failureThreshold: 5, recoveryTimeout: 30 * time.Second, halfOpenMaxCalls: 3},
	{policy: "usersBreaker", failureThreshold: 3, recoveryTimeout: 60 * time.Second, halfOpenMaxCalls: 3},
}

// quietLogger is the logger handed to Dapr's code: state changes and retry
// warnings are expected here, so only errors are printed.
func quietLogger() logger.Logger {
	l := logger.NewLogger("ordermesh.resiliency.test")
	l.SetOutputLevel(logger.ErrorLevel)
	return l
}

// The documents of resiliency.yaml, by metadata.name.
const (
	// services is the services' sidecars' document, with the breakers.
	services = "ordermesh"
	// edge is the gateway's sidecar's document, without breakers.
	edge = "ordermesh-edge"
)

// documents are the names of resiliency.yaml's documents, in file order.
var documents = []string{services, edge}

// loadSpecs loads every document of resiliency.yaml strictly and requires
// that they are the expected ones, in order.
func loadSpecs(t *testing.T) []*v1alpha1.Resiliency {
	t.Helper()
	docs, err := Load(resiliencyFile)
	require.NoError(t, err)
	edgeDocs, err := Load(edgeFile)
	require.NoError(t, err)
	docs = append(docs, edgeDocs...)
	var names []string
	for _, d := range docs {
		names = append(names, d.Name)
	}
	require.Equal(t, documents, names, "the documents of %s", resiliencyFile)
	return docs
}

// loadSpec loads the document of resiliency.yaml called name.
func loadSpec(t *testing.T, name string) *v1alpha1.Resiliency {
	t.Helper()
	return byName(t, loadSpecs(t), name)
}

// byName picks the document called name.
func byName(t *testing.T, docs []*v1alpha1.Resiliency, name string) *v1alpha1.Resiliency {
	t.Helper()
	for _, d := range docs {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no Resiliency document %q", name)
	return nil
}

// scaledSpec loads the document called name with every duration divided by
// factor.
func scaledSpec(t *testing.T, name string, factor int) *v1alpha1.Resiliency {
	t.Helper()
	res, err := Scaled(loadSpec(t, name), factor)
	require.NoError(t, err)
	return res
}

// newProvider decodes res the way daprd does at start. daprd logs the error
// and skips the resource; here it fails the test.
func newProvider(t *testing.T, res *v1alpha1.Resiliency) *daprres.Resiliency {
	t.Helper()
	p := daprres.New(quietLogger())
	require.NoError(t, p.DecodeConfiguration(res), "daprd would skip this resiliency resource")
	return p
}

// newBreaker builds the named circuit breaker of res with the steps of Dapr's
// Resiliency.decodePolicies: the spec as a generic map, decoded by
// dapr/kit/config (which parses `trip` with Dapr's CEL parser and reads the
// durations), then Initialize.
func newBreaker(t *testing.T, res *v1alpha1.Resiliency, name string) *breaker.CircuitBreaker {
	t.Helper()
	spec, ok := res.Spec.Policies.CircuitBreakers[name]
	require.True(t, ok, "no circuit breaker policy %q", name)
	raw, err := json.Marshal(spec)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	var cb breaker.CircuitBreaker
	require.NoError(t, config.Decode(m, &cb))
	cb.Name = name
	cb.Initialize(quietLogger())
	return &cb
}

// tripCounts are the counters Dapr evaluates a trip expression with.
type tripCounts struct {
	requests, totalSuccesses, totalFailures, consecutiveSuccesses, consecutiveFailures int64
}

// trips evaluates trip as breaker.CircuitBreaker does after a failure. An
// evaluation error fails the test: Dapr treats it as "do not trip", so a
// misspelt variable would silently disable the breaker.
func trips(t *testing.T, trip *expr.Expr, c tripCounts) bool {
	t.Helper()
	require.NotNil(t, trip, "no trip expression: Dapr would use its default, consecutiveFailures > 5")
	out, err := trip.Eval(map[string]any{
		"requests":             c.requests,
		"totalSuccesses":       c.totalSuccesses,
		"totalFailures":        c.totalFailures,
		"consecutiveSuccesses": c.consecutiveSuccesses,
		"consecutiveFailures":  c.consecutiveFailures,
	})
	require.NoError(t, err, "trip %q", trip)
	tripped, ok := out.(bool)
	require.True(t, ok, "trip %q is %T, not bool", trip, out)
	return tripped
}

// tripThreshold returns the number of failures in a row, with nothing else
// happening, at which trip first opens the breaker.
func tripThreshold(t *testing.T, trip *expr.Expr) int {
	t.Helper()
	for n := int64(1); n <= 100; n++ {
		if trips(t, trip, tripCounts{requests: n, totalFailures: n, consecutiveFailures: n}) {
			return int(n)
		}
	}
	t.Fatalf("trip %q does not open within 100 failures in a row", trip)
	return 0
}

// daprDuration reads a duration of the spec as Dapr does.
func daprDuration(t *testing.T, value string) time.Duration {
	t.Helper()
	d, err := parseDuration(value)
	require.NoError(t, err)
	return d
}

// durationPath matches the places of the spec that hold durations, by
// position in the resource, independently of how Scaled finds them.
var durationPath = regexp.MustCompile(`^spec\.policies\.(timeouts\.[^.]+|retries\.[^.]+\.(duration|maxInterval)|circuitBreakers\.[^.]+\.(timeout|interval))$`)

// leaves flattens res to its JSON leaves by dotted path.
func leaves(t *testing.T, res *v1alpha1.Resiliency) map[string]any {
	t.Helper()
	raw, err := json.Marshal(res)
	require.NoError(t, err)
	var doc any
	require.NoError(t, json.Unmarshal(raw, &doc))
	out := map[string]any{}
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, sub := range v {
				walk(join(path, k), sub)
			}
		case []any:
			for i, sub := range v {
				walk(join(path, strconv.Itoa(i)), sub)
			}
		default:
			out[path] = v
		}
	}
	walk("", doc)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// errApp is a failure of the called app or component.
var errApp = errors.New("app failed")

// answer decides the outcome of one attempt of a call.
type answer func(ctx context.Context, attempt int32) error

// status is an app answering with an HTTP status, as Dapr's HTTP service
// invocation hands it to the retry policy: anything outside 200-399 is a
// resiliency.CodeError carrying the status.
func status(code int) answer {
	return func(context.Context, int32) error {
		if code >= 200 && code <= 399 {
			return nil
		}
		return daprres.NewCodeError(int32(code), fmt.Errorf("%w: status %d", errApp, code))
	}
}

// unreachable is a call that got no answer: a transport error, which is not a
// CodeError, so `matching` does not apply to it.
func unreachable(context.Context, int32) error { return errApp }

// hang is a call that never answers: the policy's timeout ends the attempt.
func hang(ctx context.Context, _ int32) error {
	<-ctx.Done()
	return ctx.Err()
}

// failThenSucceed fails the first attempt with code and lets the next through.
func failThenSucceed(code int) answer {
	return func(ctx context.Context, attempt int32) error {
		if attempt == 1 {
			return status(code)(ctx, attempt)
		}
		return nil
	}
}

// run makes one call through Dapr's policy runner with policy p and reports
// how many attempts reached the app or component.
func run(p *daprres.PolicyDefinition, a answer) (attempts int32, err error) {
	var n atomic.Int32
	runner := daprres.NewRunner[any](context.Background(), p)
	_, err = runner(func(ctx context.Context) (any, error) {
		return nil, a(ctx, n.Add(1))
	})
	return n.Load(), err
}

// bothFiles returns the two resiliency files as one multi-document YAML, the
// way the tests mutate and scale them.
func bothFiles(t *testing.T) []byte {
	t.Helper()
	main, err := os.ReadFile(resiliencyFile)
	require.NoError(t, err)
	edgeDoc, err := os.ReadFile(edgeFile)
	require.NoError(t, err)
	return slices.Concat(main, []byte("---\n"), edgeDoc)
}
