// Package chaos is the soak behind `make chaos`: it starts the system the way
// the end-to-end suite does (real daprd with mTLS, on a Redis, a PostgreSQL
// and a RabbitMQ of its own, which it may kill), drives a steady mixed load
// through the gateway while faults fire one at a time (apps and sidecars
// killed, servers restarted, a consumer frozen, the order store cut off), then
// checks every invariant against what the stores hold and writes a report.
// It is built only with the chaos tag.
package chaos
