#!/usr/bin/env bash
# The one place that installs what ordermesh needs on a machine of its kind
# (Debian/Ubuntu): `make run`, `make test`, `make bench`, `make infra` and
# .ci/run all come through here, so a newcomer and CI take the same path.
#
#   dapr/scripts/install.sh [--check] redis|postgres|rabbitmq|prometheus|chromium|docker ...
#
# For each part asked for that is missing, it says what it is for, then
# installs its Debian packages when it may: as root, or with sudo that needs no
# password. Otherwise it prints the one `apt-get install` line to run and
# stops (exit 1), before anything is built. A server already listening on its
# standard port (your own Redis, PostgreSQL or RabbitMQ) counts as present.
#   --check                  only say what is missing and whether it could be installed
#   ORDERMESH_NO_INSTALL=1   never install, behave as a user who may not (the
#                            path a machine without root or sudo takes)
#   ORDERMESH_ASSUME_MISSING="redis ..."  treat these parts as missing, to try
#                            the paths above on a machine that has them
set -euo pipefail

check=
if [ "${1:-}" = --check ]; then
	check=1
	shift
fi

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# part -> why it is needed, and the Debian packages that provide it.
why() {
	case "$1" in
	redis) echo "Redis (port 6379: the state store of users, products, payments and notifications, and the default broker)" ;;
	postgres) echo "PostgreSQL (port 5432: orders' own database)" ;;
	rabbitmq) echo "RabbitMQ (port 5672: the other broker, PUBSUB=rabbitmq, and the tests of both brokers)" ;;
	prometheus) echo "Prometheus (collects the sidecars' and apps' metrics for the console; make run starts it on 9190 unless OBS=off)" ;;
	chromium) echo "Chromium (the browser tests of the console, headless)" ;;
	docker) echo "Docker's engine, Compose v1 and debootstrap (the container tests: make images, make docker-test)" ;;
	esac
}
packages() {
	case "$1" in
	redis) echo redis-server ;;
	postgres) echo postgresql ;;
	rabbitmq) echo rabbitmq-server ;;
	prometheus) echo prometheus ;;
	chromium) echo chromium ;;
	docker)
		local p=()
		command -v dockerd >/dev/null || p+=(docker.io)
		command -v docker-compose >/dev/null || p+=(docker-compose)
		command -v debootstrap >/dev/null || p+=(debootstrap)
		echo "${p[*]}"
		;;
	esac
}
present() {
	case " ${ORDERMESH_ASSUME_MISSING:-} " in *" $1 "*) return 1 ;; esac
	case "$1" in
	redis) command -v redis-server >/dev/null || listening 6379 ;;
	postgres) command -v pg_lsclusters >/dev/null || listening 5432 ;;
	rabbitmq) command -v rabbitmq-server >/dev/null || listening 5672 ;;
	prometheus) command -v prometheus >/dev/null ;;
	chromium) command -v chromium >/dev/null || command -v chromium-browser >/dev/null ;;
	docker) [ -z "$(packages docker)" ] ;;
	esac
}

missing=() pkgs=()
for part in "$@"; do
	case "$part" in
	redis | postgres | rabbitmq | prometheus | chromium | docker) ;;
	*) echo "usage: $0 [--check] redis|postgres|rabbitmq|prometheus|chromium|docker ..." >&2; exit 2 ;;
	esac
	present "$part" && continue
	missing+=("$part")
	read -ra p <<<"$(packages "$part")"
	pkgs+=("${p[@]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install: missing on this machine:"
for part in "${missing[@]}"; do
	echo "install:   $(why "$part")"
done

# How this user may install packages: "" (directly, as root), "sudo -n", or not at all.
how=none
if [ "${ORDERMESH_NO_INSTALL:-}" = 1 ]; then
	how=none
elif ! command -v apt-get >/dev/null; then
	how=noapt
elif [ "$(id -u)" = 0 ]; then
	how=root
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
	how=sudo
fi

case "$how" in
noapt)
	echo "install: this is not a Debian/Ubuntu machine (no apt-get): install ${pkgs[*]} (or their equivalents) yourself, or start the servers on their standard ports, then try again." >&2
	exit 1
	;;
none)
	echo "install: you cannot install packages here (not root, no sudo without a password). Run this once, then try again:" >&2
	echo >&2
	echo "  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs[*]}" >&2
	echo >&2
	exit 1
	;;
esac
if [ -n "$check" ]; then
	echo "install: will install ${pkgs[*]} from Debian's packages ($how)"
	exit 0
fi

sudo=()
[ "$how" = sudo ] && sudo=(sudo -n)
log=$(mktemp)
trap 'rm -f "$log"' EXIT
start=$SECONDS
echo "install: installing ${pkgs[*]} from Debian's packages (a minute or two) ..."
export DEBIAN_FRONTEND=noninteractive
if ! { "${sudo[@]}" apt-get update -qq && "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; } >"$log" 2>&1; then
	tail -20 "$log" >&2
	echo "install: apt-get failed (above); fix it, or run: sudo apt-get install -y ${pkgs[*]}" >&2
	exit 1
fi
echo "install: installed ${pkgs[*]} in $((SECONDS - start))s"
