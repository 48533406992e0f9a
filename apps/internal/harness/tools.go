package harness

// FreePorts finds n distinct free loopback ports below the ephemeral range,
// for a test's own listeners beside a system's (Jaeger, Prometheus, the
// console, the bench's profiling ports).
func FreePorts(n int) ([]int, error) { return freePorts(n) }

// StartTool starts another process that belongs to the system (a collector,
// the console): its output goes to the system's logs, it is stopped with the
// system, and its last lines are printed when the test fails.
func (s *System) StartTool(name, bin string, args, env []string) *Proc {
	s.t.Helper()
	return s.start(name, "tool", bin, args, env)
}
