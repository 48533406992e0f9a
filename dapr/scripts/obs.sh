#!/usr/bin/env bash
# Observability for `make run`: Jaeger (traces), Prometheus (metrics) and the
# ordermesh console, all on loopback. `make run` calls `start` before the apps
# and `stop` on Ctrl-C; OBS=off skips both.
#
#   dapr/scripts/obs.sh build   build Jaeger into .dapr/bin (cached by version: only the first run pays;
#                               the end-to-end tests need it too)
#   dapr/scripts/obs.sh start   start whatever of the three is not running; prints the console's URL
#   dapr/scripts/obs.sh stop    stop the three
#   dapr/scripts/obs.sh status  say what runs where
#
# Ports (environment, defaults): JAEGER_OTLP_PORT 4317 (the sidecars send spans
# there: dapr/config.yaml), JAEGER_QUERY_PORT 16686, PROMETHEUS_PORT 9190 (daprd's
# metrics use 9090-9095), CONSOLE_PORT 8088. State and logs go to .run/obs/.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/.run/obs
bin=${DAPR_TOOLCHAIN_BIN:-$root/.dapr/bin}
run_file=${RUN_FILE:-$root/dapr.yaml}
export JAEGER_OTLP_PORT=${JAEGER_OTLP_PORT:-4317}
export JAEGER_QUERY_PORT=${JAEGER_QUERY_PORT:-16686}
export JAEGER_GRPC_PORT=${JAEGER_GRPC_PORT:-16685}
export JAEGER_HEALTH_PORT=${JAEGER_HEALTH_PORT:-13133}
prometheus_port=${PROMETHEUS_PORT:-9190}
export CONSOLE_PORT=${CONSOLE_PORT:-8088}
jaeger_version=$(awk '$1 == "github.com/jaegertracing/jaeger" && $2 ~ /^v/ {print $2; exit}' "$root/dapr/toolchain/jaeger/go.mod")

running() { [ -f "$dir/$1.pid" ] && kill -0 "$(cat "$dir/$1.pid")" 2>/dev/null; }

# wait_http NAME URL: poll URL for up to 30 s while the process runs (an
# answer from another process holding the port does not count: ours exits).
wait_http() {
	local name=$1 url=$2
	for _ in $(seq 1 300); do
		running "$name" || { echo "obs: $name exited; end of $dir/$name.log:" >&2; tail -15 "$dir/$name.log" >&2; return 1; }
		if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then
			sleep 0.2
			running "$name" && return 0
		fi
		sleep 0.1
	done
	echo "obs: $name not answering $url after 30s; see $dir/$name.log" >&2
	return 1
}

build_jaeger() {
	if [ -x "$bin/jaeger" ] && [ "$(cat "$bin/jaeger.version" 2>/dev/null)" = "$jaeger_version" ]; then
		echo "obs: jaeger $jaeger_version already built ($bin/jaeger)"
		return
	fi
	echo "obs: building jaeger $jaeger_version from the Go module proxy; several minutes the first time (cached after) ..."
	local start=$SECONDS
	mkdir -p "$bin"
	(cd "$root/dapr/toolchain/jaeger" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" \
		-o "$bin/jaeger.tmp" github.com/jaegertracing/jaeger/cmd/jaeger)
	mv "$bin/jaeger.tmp" "$bin/jaeger"
	echo "$jaeger_version" >"$bin/jaeger.version"
	echo "obs: jaeger built in $((SECONDS - start))s"
}

build_console() {
	local start=$SECONDS
	mkdir -p "$root/bin"
	(cd "$root" && go build -o bin/console ./apps/console)
	echo "obs: console built in $((SECONDS - start))s"
}

start_jaeger() {
	if running jaeger; then echo "obs: jaeger running (pid $(cat "$dir/jaeger.pid"))"; return; fi
	echo "obs: starting jaeger (OTLP on 127.0.0.1:$JAEGER_OTLP_PORT, API on 127.0.0.1:$JAEGER_QUERY_PORT) ..."
	local start=$SECONDS
	"$bin/jaeger" --config "$root/dapr/observability/jaeger.yaml" >"$dir/jaeger.log" 2>&1 &
	echo $! >"$dir/jaeger.pid"
	wait_http jaeger "http://127.0.0.1:$JAEGER_QUERY_PORT/api/services"
	echo "obs: jaeger ready in $((SECONDS - start))s"
}

start_prometheus() {
	if running prometheus; then echo "obs: prometheus running (pid $(cat "$dir/prometheus.pid"))"; return; fi
	command -v prometheus >/dev/null || {
		echo "obs: prometheus is not installed; on Debian/Ubuntu: sudo apt-get install prometheus (or run with OBS=off)" >&2
		return 1
	}
	# Every sidecar's metrics port and every app's /metrics, from the run file.
	"$root/bin/console" -f "$run_file" -prometheus-config >"$dir/prometheus.yml"
	echo "obs: starting prometheus on 127.0.0.1:$prometheus_port ($(grep -c "targets:" "$dir/prometheus.yml") targets) ..."
	local start=$SECONDS
	prometheus --config.file="$dir/prometheus.yml" --web.listen-address="127.0.0.1:$prometheus_port" \
		--storage.tsdb.path="$dir/prometheus-data" --storage.tsdb.retention.time=1d >"$dir/prometheus.log" 2>&1 &
	echo $! >"$dir/prometheus.pid"
	wait_http prometheus "http://127.0.0.1:$prometheus_port/-/ready"
	echo "obs: prometheus ready in $((SECONDS - start))s"
}

start_console() {
	if running console; then echo "obs: console running (pid $(cat "$dir/console.pid"))"; return; fi
	echo "obs: starting the console on 127.0.0.1:$CONSOLE_PORT ..."
	RUN_FILE=$run_file PROMETHEUS_URL="http://127.0.0.1:$prometheus_port" JAEGER_URL="http://127.0.0.1:$JAEGER_QUERY_PORT" \
		"$root/bin/console" >"$dir/console.log" 2>&1 &
	echo $! >"$dir/console.pid"
	wait_http console "http://127.0.0.1:$CONSOLE_PORT/healthz"
}

stop_one() {
	if running "$1"; then
		kill "$(cat "$dir/$1.pid")"
		echo "obs: $1 stopped"
	fi
	rm -f "$dir/$1.pid"
}

case "${1:-}" in
build)
	build_jaeger
	;;
start)
	mkdir -p "$dir"
	build_jaeger
	build_console
	start_jaeger
	start_prometheus
	start_console
	echo "obs: console: http://127.0.0.1:$CONSOLE_PORT  (traces: Jaeger API on :$JAEGER_QUERY_PORT, metrics: Prometheus on :$prometheus_port)"
	;;
stop)
	stop_one console
	stop_one prometheus
	stop_one jaeger
	;;
status)
	for p in jaeger prometheus console; do
		if running $p; then echo "$p: running (pid $(cat "$dir/$p.pid"))"; else echo "$p: stopped"; fi
	done
	;;
*)
	echo "usage: $0 build|start|stop|status" >&2
	exit 2
	;;
esac
