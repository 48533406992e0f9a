// Package bench measures the system (`make bench`): the CPU every process
// spends per order (apps, sidecars, Redis, PostgreSQL, the broker; the load
// generator apart), over several runs of each configuration with their
// spread; where that CPU goes, from CPU profiles of every app and sidecar;
// the highest order rate held; what the sidecars add to a call; sidecar
// settings compared in the same run; how long an order takes to become a
// notification. The measuring runs only with the bench tag and asserts no
// speed: it writes a report to .bench/. The untagged files (process CPU,
// spreads, the profile summary) are plain code with unit tests.
package bench
