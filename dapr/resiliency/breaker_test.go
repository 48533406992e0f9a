package resiliency

import (
	"testing"
	"time"

	"github.com/dapr/dapr/pkg/resiliency/breaker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// breakerScale divides the breakers' open timeouts for these tests: Dapr's
// breaker (sony/gobreaker) reads the wall clock and takes no clock to inject,
// so the tests wait out 30s and 60s as 300ms and 600ms, polling the state.
const breakerScale = 100

// TestBreakerWalksTheTutorialScenarios drives Dapr's own breaker, built from
// resiliency.yaml, through the tutorial's states, asserting the tutorial's
// numbers and showing where Dapr differs (it closes after maxRequests good
// probes, not after the first).
func TestBreakerWalksTheTutorialScenarios(t *testing.T) {
	res := scaledSpec(t, services, breakerScale)
	for _, tc := range tutorialBreakers {
		t.Run(tc.policy, func(t *testing.T) {
			t.Parallel()
			cb := newBreaker(t, res, tc.policy)
			openFor := tc.recoveryTimeout / breakerScale

			// CLOSED: failures below failure_threshold let calls through.
			for range tc.failureThreshold - 1 {
				requireRan(t, cb, false, errApp)
			}
			require.Equal(t, breaker.StateClosed, cb.State())

			// A success resets the count: as many failures again stay closed.
			requireRan(t, cb, true, nil)
			for range tc.failureThreshold - 1 {
				requireRan(t, cb, false, errApp)
			}
			require.Equal(t, breaker.StateClosed, cb.State())

			// CLOSED -> OPEN: the failure_threshold-th failure in a row.
			opened := time.Now()
			requireRan(t, cb, false, errApp)
			require.Equal(t, breaker.StateOpen, cb.State())

			// OPEN: calls are refused without running.
			requireRefused(t, cb, breaker.ErrOpenState)

			// OPEN -> HALF_OPEN after recovery_timeout.
			waitHalfOpen(t, cb, opened, openFor)

			// HALF_OPEN -> OPEN: a failed probe reopens it for another timeout.
			opened = time.Now()
			requireRan(t, cb, false, errApp)
			require.Equal(t, breaker.StateOpen, cb.State())
			requireRefused(t, cb, breaker.ErrOpenState)
			waitHalfOpen(t, cb, opened, openFor)

			// HALF_OPEN: half_open_max_calls probes go through; one more is
			// refused while they are under way.
			probes := make([]*probe, tc.halfOpenMaxCalls)
			for i := range probes {
				probes[i] = startProbe(t, cb)
			}
			requireRefused(t, cb, breaker.ErrTooManyRequests)

			// HALF_OPEN -> CLOSED: the tutorial closes on the first good
			// probe; Dapr only once all maxRequests probes succeeded.
			for i, p := range probes {
				require.Equal(t, breaker.StateHalfOpen, cb.State(), "closed after %d good probes", i)
				require.NoError(t, p.finish(true))
			}
			require.Equal(t, breaker.StateClosed, cb.State())
			requireRan(t, cb, true, nil)
		})
	}
}

// requireRan makes one call through cb that succeeds or fails as told and
// requires that it ran and returned wantErr.
func requireRan(t *testing.T, cb *breaker.CircuitBreaker, succeed bool, wantErr error) {
	t.Helper()
	ran := false
	_, err := cb.Execute(func() (any, error) {
		ran = true
		if succeed {
			return nil, nil
		}
		return nil, errApp
	})
	require.True(t, ran, "call refused: %v", err)
	require.ErrorIs(t, err, wantErr)
}

// requireRefused requires that cb refuses a call with want, without running it.
func requireRefused(t *testing.T, cb *breaker.CircuitBreaker, want error) {
	t.Helper()
	ran := false
	_, err := cb.Execute(func() (any, error) {
		ran = true
		return nil, nil
	})
	require.False(t, ran, "call ran while the breaker is %s", cb.State())
	require.ErrorIs(t, err, want)
}

// waitHalfOpen polls until cb turns half-open and requires that it stayed
// open for at least openFor since opened, a time taken before the call that
// opened it.
func waitHalfOpen(t *testing.T, cb *breaker.CircuitBreaker, opened time.Time, openFor time.Duration) {
	t.Helper()
	require.Eventually(t, func() bool { return cb.State() == breaker.StateHalfOpen },
		openFor+5*time.Second, time.Millisecond, "still %s after the open timeout", cb.State())
	assert.GreaterOrEqual(t, time.Since(opened), openFor)
}

// probe is a call let through a half-open breaker and held until finished.
type probe struct {
	succeed chan bool
	done    chan error
}

// startProbe starts a call through cb and returns once the call is running.
func startProbe(t *testing.T, cb *breaker.CircuitBreaker) *probe {
	t.Helper()
	p := &probe{succeed: make(chan bool, 1), done: make(chan error, 1)}
	running := make(chan struct{})
	go func() {
		_, err := cb.Execute(func() (any, error) {
			close(running)
			if <-p.succeed {
				return nil, nil
			}
			return nil, errApp
		})
		p.done <- err
	}()
	t.Cleanup(func() {
		select {
		case p.succeed <- true: // let a probe left behind by a failed test end
		default:
		}
	})
	select {
	case <-running:
	case err := <-p.done:
		t.Fatalf("probe refused: %v", err)
	}
	return p
}

// finish lets the probe's call end as told and returns its error.
func (p *probe) finish(succeed bool) error {
	p.succeed <- succeed
	return <-p.done
}
