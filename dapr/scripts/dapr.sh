#!/usr/bin/env bash
# bin/dapr (`make build` links it here): the pinned dapr CLI, .dapr/bin/dapr,
# set up for this repository, so that `bin/dapr run -f .` at the repository
# root works as typed:
#   - DAPR_RUNTIME_PATH defaults to the repository, where the CLI finds the
#     pinned daprd (.dapr/bin/daprd) instead of looking in ~/.dapr;
#   - when dapr/config.yaml turns mTLS on, `run` starts Sentry (saying so) if
#     none listens on localhost:50001, where the CLI sends every sidecar for its
#     certificate, gives the sidecars its trust anchors, and stops that Sentry
#     again when the run ends; a Sentry already running is used and left alone;
#   - the apps get a fresh APP_API_TOKEN (only their sidecars may call them)
#     and the sidecars announce loopback over mDNS, as under `make run`.
# Ctrl-C stops the CLI, which stops every app and sidecar it started.
# Any other command (list, stop, invoke, ...) goes to the CLI unchanged.
set -euo pipefail

root=$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)
cli=$root/.dapr/bin/dapr
export DAPR_RUNTIME_PATH=${DAPR_RUNTIME_PATH:-$root}

if [ ! -x "$cli" ] || { [ "${1:-}" = run ] && [ ! -x "$DAPR_RUNTIME_PATH/.dapr/bin/daprd" ]; }; then
	echo "bin/dapr: the pinned Dapr toolchain is not built yet; building it first ..." >&2
	"$root/dapr/toolchain/build.sh" all >&2
fi
[ "${1:-}" = run ] || exec "$cli" "$@"

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
mtls_on() { awk '/^  mtls:/ {m = 1; next} m && /^  [^ ]/ {m = 0} m && $1 == "enabled:" {print $2}' "$root/dapr/config.yaml" | grep -qx true; }

started_sentry=
if mtls_on; then
	if listening 50001; then
		echo "bin/dapr: mTLS is on; using the Sentry already on localhost:50001"
	else
		echo "bin/dapr: mTLS is on (dapr/config.yaml) and no Sentry runs: starting one for this run"
		"$root/dapr/scripts/sentry.sh" start
		started_sentry=1
	fi
	eval "$("$root/dapr/scripts/sentry.sh" env)"
fi
export DAPR_HOST_IP=${DAPR_HOST_IP:-127.0.0.1}
export APP_API_TOKEN=${APP_API_TOKEN:-$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')}

# The CLI puts itself in a process group of its own, which a Ctrl-C at the
# terminal does not reach: it runs in the background here and gets the signal
# from this script.
"$cli" "$@" &
pid=$!
trap 'kill -INT "$pid" 2>/dev/null || true' INT
trap 'kill -TERM "$pid" 2>/dev/null || true' TERM HUP
status=0
while kill -0 "$pid" 2>/dev/null; do
	wait "$pid" && status=0 || status=$?
done
if [ -n "$started_sentry" ]; then
	"$root/dapr/scripts/sentry.sh" stop
fi
exit "$status"
