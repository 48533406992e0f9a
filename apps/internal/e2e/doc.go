// Package e2e holds the end-to-end suite: tests that run the real daprd and
// the six apps as processes against real Redis, PostgreSQL and RabbitMQ. They
// are built only with the e2e tag (`make e2e`), which also starts the servers.
package e2e
