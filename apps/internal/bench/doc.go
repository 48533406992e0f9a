// Package bench measures the system (`make bench`): what the sidecars cost
// next to a direct call, how many orders per second it places, how long an
// order takes to become a notification, and what every process uses. It is
// built only with the bench tag and asserts no speed: it writes a report.
package bench
