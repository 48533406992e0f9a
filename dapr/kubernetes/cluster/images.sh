#!/usr/bin/env bash
# Writes every image the cluster runs as a docker-save tar into
# .dapr/kubernetes/images (no daemon, no registry; up.sh imports them with
# `ctr images import`). Each tar is kept with the hash of what it was made
# from and rewritten only when that changes, so a second run costs the apps'
# Go build (cached) and a few hashes.
#   localhost/k8s/pause, localhost/k8s/coredns   the cluster's own (toolchain/)
#   localhost/dapr/<binary>:<version>            Dapr's control plane and daprd
#   ordermesh/<app>:local                        the six apps and the broker
#                                                topology's declaration, FROM scratch
#   ordermesh/{redis,postgres,rabbitmq}:local    stand-ins for the official
#       images, from Debian's packages (dapr/docker/build-images.sh rootfs makes
#       their root file systems with debootstrap)
# Usage: images.sh [cluster] [dapr] [apps] [servers]   (default: all)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
mkdir -p "$images"

# fresh NAME KEY: the tar NAME was made from inputs with this KEY.
fresh() { [ -f "$images/$1.tar" ] && [ "$(cat "$images/$1.key" 2>/dev/null)" = "$2" ]; }

# image NAME REF ROOTFS CONFIG_JSON INPUTS: writes $images/NAME.tar unless
# it was made from the same reference, settings and inputs (a hash).
image() {
	local name=$1 ref=$2 rootfs=$3 config=$4 key
	key=$(printf '%s\n%s\n%s\n' "$ref" "$config" "$5" | sha256sum | cut -c1-32)
	fresh "$name" "$key" && return
	say "image $ref ($(du -sh "$rootfs" | cut -f1)) ..."
	"$k8s_here/mkimg.sh" "$images/$name.tar" "$ref" "$rootfs" "$config"
	echo "$key" >"$images/$name.key"
}

# binary_image NAME REF BINARY USER: one static binary at /<basename>, and
# /tmp; nothing else (no shell, no certificates).
binary_image() {
	local name=$1 ref=$2 binary=$3 user=$4 r
	[ -x "$binary" ] || die "$binary is missing (dapr/kubernetes/toolchain/build.sh builds it)"
	r=$(mktemp -d)
	mkdir -m 1777 "$r/tmp"
	ln "$binary" "$r/" 2>/dev/null || cp "$binary" "$r/"
	image "$name" "$ref" "$r" "{\"Entrypoint\":[\"/$(basename "$binary")\"],\"User\":\"$user\",\"WorkingDir\":\"/\"}" \
		"$(sha256sum "$binary" | cut -d' ' -f1)"
	rm -rf "$r"
}

cluster_images() {
	binary_image pause localhost/k8s/pause:local "$bin/pause" 65535
	binary_image coredns "localhost/k8s/coredns:$(cat "$bin/coredns.version")" "$bin/coredns" 0
}

dapr_images() {
	local b
	# up.sh installs Dapr without actors and the scheduler (the apps use
	# neither), so placement and the scheduler get no image.
	for b in operator injector sentry; do
		binary_image "dapr-$b" "$dapr_registry/$b:$dapr_version" "$bin/$b" 65532
	done
	[ -x "$dapr_bin/daprd" ] || die "$dapr_bin/daprd is missing (make daprd builds the pinned one)"
	binary_image dapr-daprd "$dapr_registry/daprd:$dapr_version" "$dapr_bin/daprd" 65532
}

app_images() {
	local app out=$images/build
	mkdir -p "$out"
	for app in gateway users products orders payments notifications; do
		mkdir -p "$out/$app"
		CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags "-s -w" -o "$out/$app/app" "./apps/$app"
		binary_image "app-$app" "ordermesh/$app:local" "$out/$app/app" 65532
	done
	# The rabbitmq overlay's init container that declares the broker's
	# topology (overlays/rabbitmq/topology.yaml).
	mkdir -p "$out/topology"
	CGO_ENABLED=0 go -C "$root" build -trimpath -ldflags "-s -w" -o "$out/topology/topology" ./dapr/topology/cmd/topology
	binary_image app-topology ordermesh/topology:local "$out/topology/topology" 65532
}

# The stand-ins' image settings, as dapr/docker/build-images.sh gives them.
server_config() {
	case $1 in
	redis) echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"User":"redis","WorkingDir":"/data","Cmd":["redis-server","--protected-mode","no"]}' ;;
	postgres) echo '{"Env":["PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","PGDATA=/var/lib/postgresql/data"],"User":"postgres","WorkingDir":"/","Entrypoint":["docker-entrypoint.sh"],"Cmd":["postgres"]}' ;;
	rabbitmq) echo '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME=/var/lib/rabbitmq"],"User":"rabbitmq","WorkingDir":"/var/lib/rabbitmq","Entrypoint":["docker-entrypoint.sh"],"Cmd":["rabbitmq-server"]}' ;;
	esac
}

server_images() {
	"$root/dapr/docker/build-images.sh" rootfs
	local name
	for name in redis postgres rabbitmq; do
		image "server-$name" "ordermesh/$name:local" "$root/.images/rootfs/$name" "$(server_config "$name")" \
			"$(cat "$root/.images/rootfs/$name.key")"
	done
}

[ $# -gt 0 ] || set -- cluster dapr apps servers
for what in "$@"; do
	case $what in
	cluster) step "images: pause, CoreDNS" cluster_images ;;
	dapr) step "images: Dapr $dapr_version (control plane, daprd)" dapr_images ;;
	apps) step "images: the six apps" app_images ;;
	servers) step "images: Redis, PostgreSQL, RabbitMQ stand-ins" server_images ;;
	*) die "usage: $0 [cluster] [dapr] [apps] [servers]" ;;
	esac
done
