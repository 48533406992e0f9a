# ordermesh: `make run` starts the system, `make test` runs every test.
#
# The pinned Dapr toolchain (daprd 1.18.2, dapr CLI 1.16.5) is built once into
# .dapr/bin. To use your own Dapr install instead:
#   make run DAPR=dapr DAPR_RUNTIME_PATH=$$HOME     (daprd from ~/.dapr/bin)

SHELL := /bin/bash
APPS := gateway users products orders payments notifications

# Broker behind orderpubsub: redis (default) or rabbitmq.
PUBSUB ?= redis
DAPR_RUNTIME_PATH ?= $(CURDIR)
DAPR ?= $(CURDIR)/.dapr/bin/dapr
DAPRD ?= $(DAPR_RUNTIME_PATH)/.dapr/bin/daprd
PINNED_DAPRD := $(CURDIR)/.dapr/bin/daprd
PINNED_DAPR := $(CURDIR)/.dapr/bin/dapr
# Extra flags for the end-to-end suite, e.g. E2E_FLAGS='-run TestOrders -v'.
E2E_FLAGS ?=

export DAPR_RUNTIME_PATH

.PHONY: all build toolchain daprd cli infra run test unit e2e lint clean bench images docker-test fuzz

all: build

## build: compile the six apps into bin/
build:
	@mkdir -p bin
	@for app in $(APPS); do go build -o bin/$$app ./apps/$$app || exit 1; done
	@echo "build: bin/{$(shell echo $(APPS) | tr ' ' ,)}"

## toolchain: build the pinned daprd and dapr CLI (skipped when already built, or when DAPR/DAPRD point elsewhere)
toolchain: daprd cli

daprd:
	@if [ "$(DAPRD)" = "$(PINNED_DAPRD)" ]; then dapr/toolchain/build.sh daprd; \
	else echo "toolchain: using your daprd at $(DAPRD) ($$($(DAPRD) --version))"; fi

cli:
	@if [ "$(DAPR)" = "$(PINNED_DAPR)" ]; then dapr/toolchain/build.sh cli; \
	else echo "toolchain: using your dapr CLI: $(DAPR)"; fi
	@mkdir -p bin && ln -sf $(DAPR) bin/dapr

## infra: make Redis and PostgreSQL (and RabbitMQ with PUBSUB=rabbitmq) listen on their local ports
infra:
	@dapr/scripts/infra.sh redis postgres $(if $(filter rabbitmq,$(PUBSUB)),rabbitmq)

## run: build everything, start the infrastructure and `dapr run -f .`; Ctrl-C stops it all
run: toolchain build infra
	@go build -o bin/devrun ./dapr/devrun
	@bin/devrun -f dapr.yaml -dapr $(DAPR) -pubsub $(PUBSUB)

## test: unit tests, then the end-to-end suite against real daprd, Redis, PostgreSQL and RabbitMQ
test: unit e2e

## unit: the tests that need no infrastructure (seconds)
unit:
	go test -count=1 ./...
	cd dapr/resiliency && go test -count=1 ./...

## e2e: the end-to-end suite: starts daprd and the apps as processes on free ports
e2e: daprd infra
	@dapr/scripts/infra.sh rabbitmq
	ORDERMESH_DAPRD=$(DAPRD) go test -count=1 -tags e2e -timeout 30m $(E2E_FLAGS) ./apps/internal/e2e/...

lint:
	go vet ./... && go vet -tags e2e ./apps/internal/e2e/...
	@test -z "$$(gofmt -l apps dapr)" || { gofmt -l apps dapr; exit 1; }

clean:
	rm -rf bin .run apps/*/.dapr

## bench: measure sidecar overhead, order throughput, event latency and footprint; report in .bench/
bench: daprd infra
	@dapr/scripts/infra.sh rabbitmq
	@echo "bench: about 4 minutes; the report goes to .bench/latest.md"
	ORDERMESH_DAPRD=$(DAPRD) go test -count=1 -tags bench -run TestBench -timeout 20m -v ./apps/internal/bench/
