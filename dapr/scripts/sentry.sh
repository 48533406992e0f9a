#!/usr/bin/env bash
# Runs Dapr's Sentry for `make run` and plain `dapr run -f .`: the certificate
# authority that gives every sidecar its mTLS certificate. On the first start
# it generates its issuer credentials (root and issuer certificates and key)
# into .run/sentry/creds, which is git-ignored; later starts reuse them.
#
#   dapr/scripts/sentry.sh start   start it (if not running) on localhost:50001,
#                                   where the Dapr CLI sends sidecars when mTLS is on
#   dapr/scripts/sentry.sh env     print the export the sidecars need:
#                                   eval "$(dapr/scripts/sentry.sh env)"
#   dapr/scripts/sentry.sh stop    stop it
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
dir=$root/.run/sentry
sentry=${SENTRY:-$root/.dapr/bin/sentry}
port=${SENTRY_PORT:-50001}

running() { [ -f "$dir/pid" ] && kill -0 "$(cat "$dir/pid")" 2>/dev/null; }

case "${1:-}" in
start)
	if running; then
		echo "sentry: running (pid $(cat "$dir/pid")) on localhost:$port"
		exit 0
	fi
	[ -x "$sentry" ] || { echo "sentry: $sentry not found; run 'make toolchain'" >&2; exit 1; }
	mkdir -p "$dir/creds"
	chmod 700 "$dir" "$dir/creds"
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		echo "sentry: something else listens on localhost:$port; stop it first (ss -ltnp 'sport = :$port' names it)" >&2
		exit 1
	fi
	echo "sentry: starting on localhost:$port (credentials in .run/sentry/creds, log in .run/sentry/sentry.log) ..."
	# A session of its own: a Ctrl-C meant for whatever started it does not
	# reach it; `stop` ends it.
	setsid "$sentry" --issuer-credentials "$dir/creds" --trust-domain localhost \
		--listen-address 127.0.0.1 --port "$port" \
		--healthz-listen-address 127.0.0.1 --healthz-port "${SENTRY_HEALTH_PORT:-50081}" \
		--metrics-listen-address 127.0.0.1 --metrics-port "${SENTRY_METRICS_PORT:-50091}" \
		--config "$root/dapr/config.yaml" >"$dir/sentry.log" 2>&1 &
	echo $! >"$dir/pid"
	for _ in $(seq 1 100); do
		if [ -s "$dir/creds/ca.crt" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
			echo "sentry: ready (pid $(cat "$dir/pid"))"
			exit 0
		fi
		running || { echo "sentry: exited; see $dir/sentry.log" >&2; tail -5 "$dir/sentry.log" >&2; exit 1; }
		sleep 0.1
	done
	echo "sentry: not ready after 10s; see $dir/sentry.log" >&2
	exit 1
	;;
env)
	[ -s "$dir/creds/ca.crt" ] || { echo "sentry: not started yet: dapr/scripts/sentry.sh start" >&2; exit 1; }
	printf "export DAPR_TRUST_ANCHORS='%s'\n" "$(cat "$dir/creds/ca.crt")"
	;;
stop)
	if running; then
		pid=$(cat "$dir/pid")
		kill "$pid"
		for _ in $(seq 1 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
		echo "sentry: stopped (pid $pid)"
	fi
	rm -f "$dir/pid"
	;;
*)
	echo "usage: $0 start|env|stop" >&2
	exit 2
	;;
esac
