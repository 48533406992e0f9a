#!/usr/bin/env bash
# Builds every container image ordermesh uses, on this machine, with no image
# pulled from a registry (`make images` runs it):
#
#   ordermesh/<app>:local          the six apps, FROM scratch (apps/Dockerfile)
#   ordermesh/daprd:<version>      the pinned daprd and Sentry (the mTLS certificate
#   ordermesh/sentry:<version>     authority), FROM scratch (dapr/docker/dapr.Dockerfile)
#   ordermesh/redis:local          stand-ins for the official redis, postgres and
#   ordermesh/postgres:local       rabbitmq images, made from Debian's packages:
#   ordermesh/rabbitmq:local       debootstrap a minimal Debian, `docker import` it
#
# and writes .images/images.env, which points compose.yaml and the
# testcontainers harness at them:
#   docker compose --env-file .images/images.env up
#
# Each image carries a label with a hash of what it was made from (the binary,
# or the Debian packages list, mirror and files); an image whose label matches
# is kept, so a second run only rebuilds the app binaries (Go's build cache)
# and compares hashes. Work folders (root filesystems, downloaded packages)
# are in .images/ (git-ignored).
#
# Usage: dapr/docker/build-images.sh [apps] [dapr] [servers]   (default: all three)
#        dapr/docker/build-images.sh rootfs   (the servers' root file systems only, no Docker)
# Environment: DAPR_BIN (the folder with the pinned daprd and sentry, default
#   .dapr/bin), DEBIAN_MIRROR (default: the Debian mirror apt uses here),
#   DEBIAN_SUITE (default bookworm).
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
work=$root/.images
# Outlives the clone: root file systems by the hash of their inputs.
cache=${ORDERMESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/ordermesh}
apps=(gateway users products orders payments notifications)
dapr_bin=${DAPR_BIN:-$root/.dapr/bin}
suite=${DEBIAN_SUITE:-bookworm}
# Bump to rebuild the server stand-ins after changing how they are made.
recipe_version=1

# The legacy builder: the images are one COPY each, and it needs no buildx
# plugin (a Docker CLI of version 23 or later asks for one otherwise).
export DOCKER_BUILDKIT=0

say() { printf 'images: %s\n' "$*"; }
die() { printf 'images: %s\n' "$*" >&2; exit 1; }

sha() { sha256sum "$@" | awk '{print $1}' | sha256sum | awk '{print $1}'; }

# label TAG: the input hash an existing image was built from ("" if none).
label() { docker image inspect -f '{{index .Config.Labels "ordermesh.inputs"}}' "$1" 2>/dev/null || true; }

# image_id TAG: the image the tag names now ("" if none).
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

# drop_replaced OLD-ID TAG: removes the image a rebuild took the tag from,
# unless a container still uses it (then it stays, untagged).
drop_replaced() {
	if [ -n "$1" ] && [ "$1" != "$(image_id "$2")" ]; then
		docker image rm "$1" >/dev/null 2>&1 || true
	fi
}

# The Debian mirror apt is configured with (deb822 .sources or one-line .list),
# so debootstrap fetches from the same place as apt-get.
debian_mirror() {
	if [ -n "${DEBIAN_MIRROR:-}" ]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	local m
	m=$(awk -v suite="$suite" '
		FNR == 1 && NR > 1 { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0 }
		/^[[:space:]]*$/ { if (uri != "" && ok) { print uri; exit } uri = ""; ok = 0; next }
		/^URIs:/ { uri = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) ok = 1 }
		END { if (uri != "" && ok) print uri }
	' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 /debian || true)
	if [ -z "$m" ]; then
		m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk -v suite="$suite" '$1 == "deb" { sub(/\[[^]]*\] */, ""); if ($3 == suite) { print $2; exit } }' |
			grep -m1 /debian || true)
	fi
	echo "${m:-http://deb.debian.org/debian}"
}

need_docker() {
	command -v docker >/dev/null || die "docker is not installed (Debian: apt-get install docker.io)"
	docker info >/dev/null 2>&1 || die "no Docker daemon answers (is dockerd running? \`docker info\` says why)"
}

# build_binary_image TAG DOCKERFILE CONTEXT KEY [BUILD-ARG...]
build_binary_image() {
	local tag=$1 dockerfile=$2 ctx=$3 key=$4
	shift 4
	if [ "$(label "$tag")" = "$key" ]; then
		say "$tag is up to date"
		return
	fi
	local args=()
	for a in "$@"; do args+=(--build-arg "$a"); done
	say "building $tag ($(du -sh "$ctx" | cut -f1) context) ..."
	local out old
	old=$(image_id "$tag")
	if ! out=$(docker build -q -f "$dockerfile" "${args[@]}" --label "ordermesh.inputs=$key" -t "$tag" "$ctx" 2>&1); then
		printf '%s\n' "$out" >&2
		die "docker build of $tag failed"
	fi
	drop_replaced "$old" "$tag"
}

build_apps() {
	say "compiling the six apps (static, CGO_ENABLED=0) ..."
	for app in "${apps[@]}"; do
		mkdir -p "$work/apps/$app"
		CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags "-s -w" -o "$work/apps/$app/app" "./apps/$app"
	done
	for app in "${apps[@]}"; do
		build_binary_image "ordermesh/$app:local" "$root/apps/Dockerfile" "$work/apps/$app" \
			"$(sha "$work/apps/$app/app" "$root/apps/Dockerfile")" "APP=$app"
	done
	# components/compose/rabbitmq.yaml's one-shot declaration of the broker topology.
	mkdir -p "$work/apps/topology"
	CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags "-s -w" -o "$work/apps/topology/app" ./dapr/topology/cmd/topology
	build_binary_image "ordermesh/topology:local" "$root/apps/Dockerfile" "$work/apps/topology" \
		"$(sha "$work/apps/topology/app" "$root/apps/Dockerfile")" "APP=topology"
}

# dapr_version: the pinned Dapr version, as daprd reports it ("1.18.2").
dapr_version() { "$dapr_bin/daprd" --version; }

build_dapr() {
	local version
	[ -x "$dapr_bin/daprd" ] && [ -x "$dapr_bin/sentry" ] ||
		die "no daprd or sentry in $dapr_bin: run \`make daprd sentry\` first (dapr/toolchain/build.sh builds the pinned ones)"
	version=$(dapr_version)
	for binary in daprd sentry; do
		mkdir -p "$work/$binary"
		# A hard link (a copy across file systems): the build context is this
		# folder only, never the large binary twice.
		ln -f "$dapr_bin/$binary" "$work/$binary/$binary" 2>/dev/null || cp "$dapr_bin/$binary" "$work/$binary/$binary"
		build_binary_image "ordermesh/$binary:$version" "$root/dapr/docker/dapr.Dockerfile" "$work/$binary" \
			"$(sha "$work/$binary/$binary" "$root/dapr/docker/dapr.Dockerfile")" "BINARY=$binary" "DAPR_VERSION=$version"
	done
}

# The server stand-ins. Each recipe: Debian packages, a function that finishes
# the root file system, and the image settings (`docker import --change`).
redis_packages=(redis-server)
redis_files=()
redis_finish() {
	# The official image keeps its data in /data and runs as the redis user.
	mkdir -p "$1/data"
	chroot "$1" chown redis:redis /data
}
redis_changes=(
	'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	'USER redis'
	'WORKDIR /data'
	'EXPOSE 6379'
	# Listen on every interface without a password, as the official image does.
	'CMD ["redis-server", "--protected-mode", "no"]'
)

postgres_packages=(postgresql-15)
postgres_files=("$root/dapr/docker/postgres-entrypoint.sh")
postgres_finish() {
	# The package's postinst created a cluster "main": the entrypoint makes
	# its own in PGDATA from the POSTGRES_* variables instead.
	rm -rf "$1/var/lib/postgresql/15" "$1/etc/postgresql/15"
	install -m 0755 "$root/dapr/docker/postgres-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh"
	mkdir -p "$1/var/lib/postgresql/data" "$1/run/postgresql"
	chmod 700 "$1/var/lib/postgresql/data"
	chroot "$1" chown postgres:postgres /var/lib/postgresql /var/lib/postgresql/data /run/postgresql
}
postgres_changes=(
	'ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	'ENV PGDATA=/var/lib/postgresql/data'
	'USER postgres'
	'EXPOSE 5432'
	'ENTRYPOINT ["docker-entrypoint.sh"]'
	'CMD ["postgres"]'
)

rabbitmq_packages=(rabbitmq-server)
rabbitmq_files=("$root/dapr/docker/rabbitmq-entrypoint.sh" "$root/dapr/docker/rabbitmq.conf")
rabbitmq_finish() {
	install -m 0755 "$root/dapr/docker/rabbitmq-entrypoint.sh" "$1/usr/local/bin/docker-entrypoint.sh"
	install -m 0644 "$root/dapr/docker/rabbitmq.conf" "$1/etc/rabbitmq/rabbitmq.conf"
	rm -rf "$1/var/lib/rabbitmq/mnesia" "$1/var/lib/rabbitmq/.erlang.cookie"
	chroot "$1" chown -R rabbitmq:rabbitmq /var/lib/rabbitmq /var/log/rabbitmq
}
rabbitmq_changes=(
	'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
	'ENV HOME=/var/lib/rabbitmq'
	'USER rabbitmq'
	'WORKDIR /var/lib/rabbitmq'
	'EXPOSE 5672'
	'ENTRYPOINT ["docker-entrypoint.sh"]'
	'CMD ["rabbitmq-server"]'
)

# server_key NAME MIRROR: the hash of everything the stand-in NAME is made from.
server_key() {
	local name=$1 mirror=$2
	local -n packages=${name}_packages files=${name}_files changes=${name}_changes
	(
		{
			echo "recipe $recipe_version suite $suite mirror $mirror packages ${packages[*]}"
			printf '%s\n' "${changes[@]}"
			declare -f "${name}_finish"
			[ ${#files[@]} -eq 0 ] || sha256sum "${files[@]}" | awk '{print $1}'
		} | sha256sum | awk '{print $1}'
	)
}

# server_rootfs NAME MIRROR KEY: the stand-in's root file system in
# .images/rootfs/NAME (made with debootstrap unless it was made from KEY).
# No Docker needed: the Kubernetes cluster's images are made from it too
# (dapr/kubernetes/cluster/images.sh). A copy per KEY is kept in the
# machine's cache ($cache/rootfs), so a fresh clone on the same machine (CI's)
# copies it in seconds instead of bootstrapping Debian again.
server_rootfs() {
	local name=$1 mirror=$2 key=$3
	local -n packages=${name}_packages
	local rootfs=$work/rootfs/$name cached=$cache/rootfs/$name-$3
	if [ "$(cat "$rootfs.key" 2>/dev/null)" = "$key" ]; then
		say "reusing the root file system in .images/rootfs/$name"
	elif [ -d "$cached" ]; then
		say "copying the root file system of $name from the machine's cache ($cached) ..."
		rm -rf "$rootfs" "$rootfs.key"
		mkdir -p "$work/rootfs"
		cp -a "$cached" "$rootfs"
		echo "$key" >"$rootfs.key"
	else
		command -v debootstrap >/dev/null || die "debootstrap is not installed (Debian: apt-get install debootstrap)"
		say "debootstrap: a minimal Debian $suite with ${packages[*]} into .images/rootfs/$name, from $mirror (about a minute; log: .images/rootfs/$name.log) ..."
		rm -rf "$rootfs" "$rootfs.key"
		mkdir -p "$work/debs" "$work/rootfs"
		if ! debootstrap --variant=minbase --include="$(IFS=,; echo "${packages[*]}")" \
			--cache-dir="$work/debs" "$suite" "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
			tail -n 20 "$rootfs.log" >&2
			die "debootstrap of $name failed (whole log: $rootfs.log)"
		fi
		"${name}_finish" "$rootfs"
		# What a container never needs: documentation, translations, apt's lists.
		rm -rf "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/* \
			"$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*
		echo "$key" >"$rootfs.key"
	fi
	if [ ! -d "$cached" ]; then
		# Copied aside first and renamed, so a run cut short never leaves a
		# half copy where a later one would take it for whole; copies made
		# from older inputs go.
		mkdir -p "$cache/rootfs"
		rm -rf "$cached.partial"
		cp -a "$rootfs" "$cached.partial"
		find "$cache/rootfs" -mindepth 1 -maxdepth 1 -name "$name-*" ! -name "$name-$key.partial" -exec rm -rf {} +
		mv "$cached.partial" "$cached"
	fi
}

build_server() {
	local name=$1 mirror=$2
	local -n changes=${name}_changes
	local tag=ordermesh/$name:local key
	key=$(server_key "$name" "$mirror")
	if [ "$(label "$tag")" = "$key" ]; then
		say "$tag is up to date"
		return
	fi
	local rootfs=$work/rootfs/$name start=$SECONDS
	server_rootfs "$name" "$mirror" "$key"
	local args=()
	for c in "${changes[@]}" "LABEL ordermesh.inputs=$key"; do args+=(--change "$c"); done
	say "importing $tag ($(du -sh "$rootfs" | cut -f1)) ..."
	local old
	old=$(image_id "$tag")
	tar --numeric-owner -C "$rootfs" -c . | docker import "${args[@]}" - "$tag" >/dev/null
	drop_replaced "$old" "$tag"
	say "$tag built in $((SECONDS - start))s"
}

# The stand-ins' root file systems only (no Docker): `rootfs`.
build_rootfs() {
	local mirror name
	mirror=$(debian_mirror)
	for name in redis postgres rabbitmq; do
		server_rootfs "$name" "$mirror" "$(server_key "$name" "$mirror")"
	done
}

build_servers() {
	local mirror
	mirror=$(debian_mirror)
	for name in redis postgres rabbitmq; do
		build_server "$name" "$mirror"
	done
}

write_env() {
	mkdir -p "$work"
	cat >"$work/images.env.tmp" <<EOF
# Written by dapr/docker/build-images.sh: the locally built images, for
#   docker compose --env-file .images/images.env up
# (the app images' default names are the local ones already).
DAPRD_IMAGE=ordermesh/daprd:$(dapr_version)
SENTRY_IMAGE=ordermesh/sentry:$(dapr_version)
REDIS_IMAGE=ordermesh/redis:local
POSTGRES_IMAGE=ordermesh/postgres:local
RABBITMQ_IMAGE=ordermesh/rabbitmq:local
EOF
	mv "$work/images.env.tmp" "$work/images.env"
}

[ $# -gt 0 ] || set -- apps dapr servers
start=$SECONDS
if [ "$*" = rootfs ]; then
	build_rootfs
	exit
fi
need_docker
for what in "$@"; do
	case "$what" in
	apps) build_apps ;;
	dapr) build_dapr ;;
	servers) build_servers ;;
	*) die "usage: $0 [apps] [dapr] [servers]" ;;
	esac
done
[ ! -x "$dapr_bin/daprd" ] || write_env
say "done in $((SECONDS - start))s; offline compose: docker compose --env-file .images/images.env up"
