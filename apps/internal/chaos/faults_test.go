//go:build chaos

package chaos

import (
	"time"

	"github.com/ordermesh/ordermesh/apps/internal/harness"
)

// fault is one fault of the schedule: inject it, hold it, undo it.
type fault struct {
	Name   string
	inject func()
	hold   time.Duration
	undo   func() // restart, thaw, reconnect; returns once it is done
}

// faultResult is what the report says of one fault.
type faultResult struct {
	Name            string
	Start, Restored time.Time // injected; undone
	Recovered       time.Time // the probe's order answered 201 and its email stored
	Err             error     // not recovered
}

// schedule lists the faults of one run, one at a time: every app and every
// sidecar killed with SIGKILL and started again, each server crashed or
// restarted (Redis with SIGKILL: the append-only file must keep what was
// answered), notifications frozen, and orders' PostgreSQL cut off while
// orders are being placed.
func schedule(sys *harness.System, servers map[string]*harness.Server, broker string, freeze, cut time.Duration) []fault {
	var faults []fault
	for _, name := range harness.Apps {
		a := sys.App(name)
		faults = append(faults, fault{
			Name:   "SIGKILL " + name + " app, restart",
			inject: func() { a.AppProc().Kill() },
			undo:   func() { a.StartApp(); a.WaitReadyWithin(2 * time.Minute) },
		})
	}
	for _, name := range harness.Apps {
		a := sys.App(name)
		faults = append(faults, fault{
			Name:   "SIGKILL " + name + " sidecar, restart",
			inject: func() { a.SidecarProc().Kill() },
			undo:   func() { a.StartSidecar(); a.WaitReadyWithin(2 * time.Minute) },
		})
	}
	redisName := "SIGKILL Redis (state), 3 s, start"
	if broker == "redis" {
		redisName = "SIGKILL Redis (state and broker), 3 s, start"
	}
	faults = append(faults,
		fault{Name: redisName, inject: servers["redis"].Kill, hold: 3 * time.Second, undo: servers["redis"].Start},
		fault{Name: "SIGKILL PostgreSQL, 5 s, start", inject: servers["postgres"].Kill, hold: 5 * time.Second, undo: servers["postgres"].Start},
	)
	if broker == "rabbitmq" {
		faults = append(faults, fault{Name: "stop RabbitMQ, 5 s, start", inject: servers["rabbitmq"].Stop, hold: 5 * time.Second, undo: servers["rabbitmq"].Start})
	}
	n := sys.App("notifications")
	faults = append(faults,
		fault{
			Name:   "SIGSTOP notifications app " + freeze.String() + ", SIGCONT",
			inject: func() { _ = n.AppProc().Freeze() }, hold: freeze,
			undo: func() { _ = n.AppProc().Thaw() },
		},
		fault{
			Name:   "cut orders' sidecar from PostgreSQL " + cut.String(),
			inject: sys.Postgres.Down, hold: cut, undo: sys.Postgres.Up,
		},
	)
	return faults
}
