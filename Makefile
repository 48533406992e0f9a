# ordermesh: `make run` starts the system, `make test` runs every test.
#
# The pinned Dapr toolchain (daprd 1.18.2, dapr CLI 1.16.5) is built once into
# .dapr/bin. To use your own Dapr install instead:
#   make run DAPR=dapr DAPR_RUNTIME_PATH=$$HOME     (daprd from ~/.dapr/bin)

SHELL := /bin/bash
APPS := gateway users products orders payments notifications

# Broker behind orderpubsub: redis (default) or rabbitmq.
PUBSUB ?= redis
# mTLS between sidecars and access policies: on (default) or off (debugging).
MTLS ?= on
# Jaeger, Prometheus and the console beside `make run`: on (default) or off.
OBS ?= on
DAPR_RUNTIME_PATH ?= $(CURDIR)
DAPR ?= $(CURDIR)/.dapr/bin/dapr
DAPRD ?= $(DAPR_RUNTIME_PATH)/.dapr/bin/daprd
PINNED_DAPRD := $(CURDIR)/.dapr/bin/daprd
PINNED_DAPR := $(CURDIR)/.dapr/bin/dapr
# The multi-app run file `make run` starts; to use other ports, copy dapr.yaml,
# change the ports in the copy and name it here (dapr/scripts/preflight.sh says so).
RUN_FILE ?= dapr.yaml
# The servers `make run` and `make infra` need (and Prometheus for the console unless OBS=off).
SERVERS = $(strip redis postgres $(if $(filter rabbitmq,$(PUBSUB)),rabbitmq))
RUN_PARTS = $(strip $(SERVERS) $(if $(filter off,$(OBS)),,prometheus))
# What the end-to-end suite and the benchmarks need (the observability tests: prometheus; the browser tests: chromium).
TEST_SERVERS = redis postgres rabbitmq prometheus chromium
# bin/dapr: the pinned CLI behind dapr/scripts/dapr.sh (finds the pinned daprd
# and Sentry by itself), or your own CLI as it is.
BIN_DAPR = $(if $(filter $(PINNED_DAPR),$(DAPR)),../dapr/scripts/dapr.sh,$(DAPR))
# Extra flags for the end-to-end suite, e.g. E2E_FLAGS='-run TestOrders -v'.
E2E_FLAGS ?=

export DAPR_RUNTIME_PATH

# The servers `make infra` makes listen locally. Without any ORDERMESH_*
# address, the harness starts its servers with testcontainers-go when a Docker
# daemon answers (make docker-test); make e2e and make bench name these.
ORDERMESH_REDIS ?= localhost:6379
ORDERMESH_POSTGRES ?= host=localhost port=5432 user=ordermesh password=ordermesh dbname=ordermesh sslmode=disable
ORDERMESH_RABBITMQ ?= amqp://guest:guest@localhost:5672
LOCAL_INFRA = ORDERMESH_REDIS='$(ORDERMESH_REDIS)' ORDERMESH_POSTGRES='$(ORDERMESH_POSTGRES)' ORDERMESH_RABBITMQ='$(ORDERMESH_RABBITMQ)'

.PHONY: all preflight setup build toolchain daprd sentry cli jaeger infra run test unit e2e lint clean bench images docker-test fuzz chaos

all: build

## preflight: check in seconds what the build and the run need (Go, make, disk, ports, servers), install missing servers
# Each target that needs more sets PREFLIGHT; its prerequisites inherit it, so
# the check runs once, before the first build step.
PREFLIGHT =
preflight:
	@dapr/scripts/preflight.sh $(PREFLIGHT)
run: PREFLIGHT = --ports $(RUN_FILE) $(if $(filter off,$(MTLS)),,--sentry) --servers "$(RUN_PARTS)"
test e2e setup: PREFLIGHT = --servers "$(TEST_SERVERS)"
bench: PREFLIGHT = --servers "redis postgres rabbitmq"

## setup: what make test checks and installs first, alone (.ci/run starts with it)
setup: preflight

## build: compile the six apps into bin/, bin/dapr (so `bin/dapr run -f .` works) and bin/devtoken (the development signing key in .run/auth, made once)
build:
	@mkdir -p bin
	@start=$$SECONDS; go build -o bin/ $(addprefix ./apps/,$(APPS)) 2>&1 | { grep -v '^go: downloading ' || true; }; \
		[ $${PIPESTATUS[0]} -eq 0 ] || exit 1; \
		echo "build: bin/{$(shell echo $(APPS) | tr ' ' ,)} in $$((SECONDS - start))s"
	@ln -sfn $(BIN_DAPR) bin/dapr
	@go build -o bin/devtoken ./apps/internal/devtoken && bin/devtoken -init

## toolchain: build the pinned daprd and dapr CLI (skipped when already built, or when DAPR/DAPRD point elsewhere)
toolchain: daprd sentry cli

daprd sentry cli: preflight

sentry:
	@if [ "$(DAPRD)" = "$(PINNED_DAPRD)" ]; then dapr/toolchain/build.sh sentry; fi

daprd:
	@if [ "$(DAPRD)" = "$(PINNED_DAPRD)" ]; then dapr/toolchain/build.sh daprd; \
	else echo "toolchain: using your daprd at $(DAPRD) ($$($(DAPRD) --version))"; fi

cli:
	@if [ "$(DAPR)" = "$(PINNED_DAPR)" ]; then dapr/toolchain/build.sh cli; \
	else echo "toolchain: using your dapr CLI: $(DAPR)"; fi
	@mkdir -p bin && ln -sfn $(BIN_DAPR) bin/dapr

## jaeger: build Jaeger (traces) into .dapr/bin, once per version
jaeger:
	@dapr/scripts/obs.sh build

## infra: make Redis and PostgreSQL (and RabbitMQ with PUBSUB=rabbitmq) listen on their local ports
infra:
	@dapr/scripts/infra.sh $(SERVERS)

## run: check, build everything, start the infrastructure (and Jaeger, Prometheus and the console unless OBS=off) and `dapr run -f .`; Ctrl-C stops it all
run: preflight toolchain build infra $(if $(filter off,$(OBS)),,jaeger)
	@go build -o bin/devrun ./dapr/devrun
	@$(if $(filter off,$(OBS)),,dapr/scripts/obs.sh start && trap 'dapr/scripts/obs.sh stop' EXIT && \
		export OTEL_EXPORTER_OTLP_ENDPOINT=localhost:4317 CONSOLE_URL=http://127.0.0.1:8088 &&) \
	bin/devrun -f $(RUN_FILE) -dapr $(DAPR) -pubsub $(PUBSUB) -mtls=$(if $(filter off,$(MTLS)),false,true)

## test: unit tests, then the end-to-end suite against real daprd, Redis, PostgreSQL and RabbitMQ
test: preflight unit e2e

## unit: the tests that need no infrastructure (seconds)
unit:
	go test -count=1 ./...
	cd dapr/resiliency && go test -count=1 ./...

## e2e: the end-to-end suite: starts daprd and the apps as processes on free ports
e2e: daprd sentry cli jaeger infra
	@dapr/scripts/infra.sh rabbitmq
	ORDERMESH_DAPRD=$(DAPRD) $(LOCAL_INFRA) go test -count=1 -tags e2e -timeout 30m $(E2E_FLAGS) ./apps/internal/e2e/...

## images: build every container image here, from nothing a registry serves (cached: a second run takes seconds)
# The six apps and the pinned daprd and Sentry FROM scratch, and stand-ins for
# Redis, PostgreSQL and RabbitMQ made from Debian's packages (debootstrap);
# writes .images/images.env for `docker compose --env-file .images/images.env up`.
images:
	@dapr/toolchain/build.sh daprd
	@dapr/toolchain/build.sh sentry
	@dapr/docker/build-images.sh

## docker-test: the container tests: compose.yaml (both brokers) and testcontainers-go; needs a Docker daemon
docker-test: images
	ORDERMESH_DAPRD=$(PINNED_DAPRD) ORDERMESH_REQUIRE_DOCKER=1 go test -count=1 -tags 'e2e docker' -timeout 20m \
		-run 'TestCompose|TestContainers' $(E2E_FLAGS) ./apps/internal/e2e/

lint:
	go vet ./... && go vet -tags e2e ./apps/internal/e2e/... && go vet -tags 'e2e docker' ./apps/internal/e2e/... \
		&& go vet -tags bench ./apps/internal/bench/ && go vet -tags chaos ./apps/internal/chaos/ && go vet -tags k8s ./dapr/kubernetes/... && go vet -tags 'k8s k8sbench' ./dapr/kubernetes/k8stest/
	@test -z "$$(gofmt -l apps dapr)" || { gofmt -l apps dapr; exit 1; }

clean:
	rm -rf bin .run apps/*/.dapr

## bench: CPU per order over every process and where it goes (profiles), highest order rate, sidecar overhead and settings, event latency; report in .bench/
bench: preflight daprd sentry infra
	@dapr/scripts/infra.sh rabbitmq
	@echo "bench: about 7-10 minutes (BENCH_BUDGET, default 12m, caps the measuring); report in .bench/latest.md, profiles in .bench/profiles-<time>/"
	@start=$$(date +%s); ORDERMESH_DAPRD=$(DAPRD) $(LOCAL_INFRA) go test -count=1 -tags bench -run TestBench -timeout 25m -v ./apps/internal/bench/; rc=$$?; echo "bench: took $$(( $$(date +%s) - start ))s"; exit $$rc

# How long `make fuzz` runs each fuzz target.
FUZZTIME ?= 1m

## fuzz: run every fuzz target under apps/ for FUZZTIME each (default 1m), one after the other; stops at the first crash
# A crash leaves its input in the package's testdata/fuzz/<target>/. A run that
# fails with only "context deadline exceeded" and writes no input is Go's
# fuzztime race (go.dev/issue/75804), not a crash: it is reported and skipped.
fuzz:
	@set -eo pipefail; \
	targets=$$(go test -list '^Fuzz' ./apps/... | awk '/^Fuzz/ { names[n++] = $$1; next } /^ok/ { for (i = 0; i < n; i++) print $$2 "," names[i]; n = 0 }'); \
	test -n "$$targets" || { echo "fuzz: no fuzz targets found"; exit 1; }; \
	log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	for t in $$targets; do \
		pkg=$${t%,*}; name=$${t#*,}; \
		echo "fuzz: $$name in $$pkg for $(FUZZTIME)"; \
		if go test -run='^$$' -fuzz="^$$name$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1 | tee "$$log"; then continue; fi; \
		if ! grep -q 'Failing input written' "$$log" && grep -qx '    context deadline exceeded' "$$log"; then \
			echo "fuzz: $$name: no crash, the fuzztime deadline raced a worker (go.dev/issue/75804)"; continue; \
		fi; \
		echo "fuzz: $$name in $$pkg failed"; exit 1; \
	done

.PHONY: k8s-toolchain k8s-up k8s-down k8s-test k8s-bench

## k8s-toolchain: build Kubernetes, CoreDNS, Helm and Dapr's control plane for the local cluster (once, then cached by version)
k8s-toolchain: daprd
	@dapr/kubernetes/toolchain/build.sh all

## k8s-up: boot a single-node Kubernetes here with Dapr's control plane and deploy ordermesh (PUBSUB=redis|rabbitmq); needs root
k8s-up: k8s-toolchain build
	@dapr/kubernetes/cluster/up.sh $(PUBSUB)

## k8s-down: stop that cluster; leaves no process, mount, network link or iptables chain
k8s-down:
	@dapr/kubernetes/cluster/down.sh

## k8s-test: boot the cluster, test ordermesh on it (both overlays; pod kills and rolling restarts under load), tear it down
k8s-test: k8s-toolchain
	go test -count=1 -tags k8s -timeout 60m -v -run TestCluster ./dapr/kubernetes/k8stest/

## k8s-bench: boot the cluster (redis overlay), measure CPU per order and latency through the gateway's Service, tear it down; report in .bench/k8s.md
# K8S_BENCH_RATE (orders/s, default 100), K8S_BENCH_RUNS (3), K8S_BENCH_STEP (10s).
k8s-bench: k8s-toolchain
	@echo "k8s-bench: about 5 minutes warm (cluster up, seed, runs, cluster down); report in .bench/k8s.md"
	@start=$$(date +%s); go test -count=1 -tags 'k8s k8sbench' -timeout 60m -v -run '^TestBench$$' ./dapr/kubernetes/k8stest/; rc=$$?; \
		echo "k8s-bench: took $$(( $$(date +%s) - start ))s"; exit $$rc

# The chaos soak: least load time per broker, notifications' freeze, brokers.
CHAOS_DURATION ?= 3m
CHAOS_FREEZE ?= 30s
CHAOS_BROKERS ?= redis,rabbitmq

## chaos: kill apps, sidecars and (private) servers during steady load on each broker, then check every invariant; report in .chaos/latest.md
chaos: daprd sentry infra
	@echo "chaos: $(CHAOS_BROKERS), at least $(CHAOS_DURATION) of load each (6 to 9 minutes per broker); report: .chaos/latest.md"
	@start=$$(date +%s); ORDERMESH_DAPRD=$(DAPRD) CHAOS_DURATION=$(CHAOS_DURATION) CHAOS_FREEZE=$(CHAOS_FREEZE) CHAOS_BROKERS=$(CHAOS_BROKERS) \
		go test -count=1 -tags chaos -run TestChaos -timeout 60m -v ./apps/internal/chaos/; rc=$$?; \
		echo "chaos: took $$(( $$(date +%s) - start ))s"; exit $$rc
