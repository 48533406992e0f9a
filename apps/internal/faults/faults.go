// Package faults lets the end-to-end tests kill an app between two steps of a
// multi-step write, to prove the repair that follows. It is test-only: an app
// started without ORDERMESH_EXIT_AT never exits on its own.
package faults

import (
	"log/slog"
	"os"
)

// Environment variables read once, at start, with the rest of the config.
const (
	// EnvVar names the step at which the app exits (each app documents its
	// step names).
	EnvVar = "ORDERMESH_EXIT_AT"
	// OnceVar, if set, is a file path: only the first process to reach the
	// step creates it and exits; a restarted or second replica with the
	// same environment goes on.
	OnceVar = "ORDERMESH_EXIT_ONCE"
)

// ExitCode is what an app killed at a step exits with.
const ExitCode = 86

// ExitAt returns the function an app calls after each step: it exits the
// process, without any cleanup, when the step is the one named by
// ORDERMESH_EXIT_AT, and does nothing otherwise. Unset, it never exits.
func ExitAt(getenv func(string) string, log *slog.Logger) func(step string) {
	at, once := getenv(EnvVar), getenv(OnceVar)
	if at == "" {
		return func(string) {}
	}
	log.Warn("test fault armed: the app exits at a step", "step", at, "once", once)
	return func(step string) {
		if step != at {
			return
		}
		if once != "" {
			f, err := os.OpenFile(once, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
			if err != nil {
				return // another process took the fault already
			}
			_ = f.Close()
		}
		log.Warn("test fault: exiting at step", "step", step)
		os.Exit(ExitCode)
	}
}
