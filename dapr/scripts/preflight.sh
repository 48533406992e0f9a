#!/usr/bin/env bash
# What `make run`, `make test` and `make bench` check before anything is
# built: everything that can be checked in seconds, so a problem is reported
# with its fix at once instead of after a 15-minute toolchain build.
#
#   dapr/scripts/preflight.sh [--ports RUN_FILE] [--sentry] [--servers "redis postgres ..."]
#
#   always     Go (at least the version the go.mod files ask for), make, and
#              disk space for the toolchain build when it is not built yet
#   --ports    the ports of the run file (apps, sidecar HTTP/gRPC, metrics) are free
#   --sentry   port 50001 is free for Sentry (mTLS), or this repository's Sentry holds it
#   --servers  the servers (and tools) are installed, or are installed now by
#              dapr/scripts/install.sh, or it prints the `apt-get install` line
#
# Every problem is listed with its fix; exit 1 if there is any.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
start_ns=$(date +%s%N)

ports_file= sentry= servers=
while [ $# -gt 0 ]; do
	case "$1" in
	--ports) ports_file=$2; shift 2 ;;
	--sentry) sentry=1; shift ;;
	--servers) servers=$2; shift 2 ;;
	*) echo "usage: $0 [--ports RUN_FILE] [--sentry] [--servers \"redis postgres ...\"]" >&2; exit 2 ;;
	esac
done

problems=()
problem() { problems+=("$*"); }
ok=()

# Go: the highest `go` line of the modules this repository builds.
need_go=$(awk '$1 == "go" {print $2}' go.mod dapr/toolchain/daprd/go.mod dapr/toolchain/cli/go.mod | sort -V | tail -1)
if ! command -v go >/dev/null; then
	problem "Go is not installed: install Go $need_go or newer (https://go.dev/dl/) and put it on PATH."
else
	have_go=$(go env GOVERSION 2>/dev/null | sed 's/^go//')
	if [ "$(printf '%s\n%s\n' "$need_go" "$have_go" | sort -V | head -1)" != "$need_go" ]; then
		problem "Go $have_go is older than the $need_go the go.mod files need: install Go $need_go or newer (https://go.dev/dl/)."
	else
		ok+=("Go $have_go")
	fi
fi
command -v make >/dev/null || problem "make is not installed: sudo apt-get install -y make"

# Disk: a cold toolchain build downloads about 3 GB of modules and leaves about
# 3 GB in Go's build cache.
bin=$root/.dapr/bin
if [ ! -x "$bin/daprd" ] || [ ! -x "$bin/dapr" ] || [ ! -x "$bin/sentry" ]; then
	need_gb=6
else
	need_gb=1
fi
if command -v go >/dev/null; then
	for dir in "$(go env GOMODCACHE)" "$(go env GOCACHE)"; do
		mkdir -p "$dir" 2>/dev/null || true
		free_gb=$(df -Pk "$dir" 2>/dev/null | awk 'NR == 2 {printf "%d", $4 / 1048576}')
		if [ -z "$free_gb" ]; then
			problem "cannot read the free space of $dir (go env GOMODCACHE / GOCACHE): make it a directory this user may write."
		elif [ "$free_gb" -lt "$need_gb" ]; then
			problem "only ${free_gb} GB free for $dir; the build needs about ${need_gb} GB: free some space (go clean -cache empties Go's build cache)."
		fi
	done
	ok+=("${free_gb:-?} GB free")
fi

# owner <port>: "pid N: command line" of the process listening on port, if it can be read.
owner() {
	local port=$1 pid=
	if command -v ss >/dev/null; then
		pid=$(ss -ltnpH "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
	fi
	if [ -z "$pid" ]; then
		# Without ss (or its -p): the socket's inode from /proc/net/tcp*, then
		# the process holding it from /proc/*/fd.
		local hex inode
		hex=$(printf '%04X' "$port")
		inode=$(awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" {print $10; exit}' /proc/net/tcp /proc/net/tcp6 2>/dev/null)
		if [ -n "$inode" ]; then
			pid=$(find /proc/[0-9]*/fd -lname "socket:\[$inode\]" 2>/dev/null | head -1 | cut -d/ -f3)
		fi
	fi
	if [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ]; then
		echo "pid $pid: $(tr '\0' ' ' <"/proc/$pid/cmdline" | cut -c1-120)"
	else
		echo "a process this user cannot see (sudo ss -ltnp 'sport = :$port' shows it)"
	fi
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ -n "$ports_file" ]; then
	ports=$(awk '$1 ~ /^-?(appPort|daprHTTPPort|daprGRPCPort|metricsPort):$/ {print $2}' "$ports_file")
	taken=()
	for port in $ports; do
		listening "$port" && taken+=("$port")
	done
	for port in "${taken[@]}"; do
		problem "port $port (in $ports_file) is taken by $(owner "$port"). Stop that process (an earlier run? bin/dapr list), or run on other ports: copy $ports_file to a new file in the repository root, change the ports of that app (appPort, daprHTTPPort, daprGRPCPort, metricsPort; and the gateway's SIDECAR_METRICS), then: make run RUN_FILE=<that file>."
	done
	[ ${#taken[@]} -eq 0 ] && ok+=("ports of $ports_file free")
fi

if [ -n "$sentry" ]; then
	if listening 50001; then
		who=$(owner 50001)
		pid=${who#pid }
		pid=${pid%%:*}
		if [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$bin/sentry")" ] && [ -s .run/sentry/creds/ca.crt ]; then
			ok+=("Sentry running (pid $pid)")
		else
			problem "port 50001, where the dapr CLI sends sidecars for their mTLS certificates, is taken by $who. Stop it (often a \`dapr init\` placement or scheduler, or another checkout's Sentry), or run without mTLS: make run MTLS=off."
		fi
	else
		for port in 50081 50091; do
			listening "$port" && problem "port $port (Sentry's health/metrics port) is taken by $(owner "$port"); stop that process, or run without mTLS: make run MTLS=off."
		done
	fi
fi

if [ -n "$servers" ]; then
	# shellcheck disable=SC2086 # a list of words
	if ! "$root/dapr/scripts/install.sh" --check $servers >/dev/null 2>&1; then
		# Cannot install: let the installer print its line now, before anything is built.
		# shellcheck disable=SC2086
		"$root/dapr/scripts/install.sh" --check $servers >&2 || true
		problem "the servers above are missing and cannot be installed by this user (the apt-get line is above)."
	else
		ok+=("servers: $servers")
	fi
fi

elapsed=$((($(date +%s%N) - start_ns) / 1000000))
if [ ${#problems[@]} -gt 0 ]; then
	echo "preflight: ${#problems[@]} problem(s), found in ${elapsed}ms; nothing was built:" >&2
	for p in "${problems[@]}"; do
		echo "  - $p" >&2
	done
	exit 1
fi


summary=$(printf '%s, ' "${ok[@]}")
echo "preflight: ok in ${elapsed}ms (${summary%, })"

if [ -n "$servers" ]; then
	# shellcheck disable=SC2086
	"$root/dapr/scripts/install.sh" $servers
fi
