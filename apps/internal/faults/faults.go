// Package faults lets the end-to-end tests kill an app between two steps of a
// multi-step write, to prove the repair that follows. It is test-only: an app
// started without ORDERMESH_EXIT_AT never exits on its own.
package faults

import (
	"log/slog"
	"os"
)

// EnvVar names the step at which the app exits, as "<step name>" (each app
// documents its steps). Read once, at start, with the rest of the config.
const EnvVar = "ORDERMESH_EXIT_AT"

// ExitCode is what an app killed at a step exits with.
const ExitCode = 86

// ExitAt returns the function an app calls after each step: it exits the
// process, without any cleanup, when the step is the one named by
// ORDERMESH_EXIT_AT, and does nothing otherwise. Unset, it never exits.
func ExitAt(getenv func(string) string, log *slog.Logger) func(step string) {
	at := getenv(EnvVar)
	if at == "" {
		return func(string) {}
	}
	log.Warn("test fault armed: the app exits at a step", "step", at)
	return func(step string) {
		if step == at {
			log.Warn("test fault: exiting at step", "step", step)
			os.Exit(ExitCode)
		}
	}
}
