#!/usr/bin/env bash
# Builds what the single-node cluster of `make k8s-up` runs, from the Go module
# proxy, into .dapr/kubernetes/bin (git-ignored):
#   kube     Kubernetes v1.34.3: kube-apiserver, kube-controller-manager,
#            kube-scheduler, kubelet, kube-proxy, kubectl (toolchain/kube;
#            about 13 minutes the first time on 2 cores)
#   coredns  CoreDNS, the cluster's DNS (toolchain/coredns; about 2.5 minutes)
#   helm     Helm, which renders Dapr's official chart (toolchain/helm; about 2 minutes)
#   dapr     Dapr's control plane: operator, sidecar injector, placement,
#            scheduler, sentry, from the same module as the pinned daprd
#            (dapr/toolchain/daprd; about 4 minutes)
#   pause    the pod sandbox image's program (toolchain/pause; seconds)
# Every group is built once: a stamp file records the version it was built
# from, and a later run with the same version keeps the binaries. Tests never
# build; they only check that the binaries are there.
# Usage: dapr/kubernetes/toolchain/build.sh [kube|coredns|helm|dapr|pause|all]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
bin=${K8S_TOOLCHAIN_BIN:-$root/.dapr/kubernetes/bin}
mkdir -p "$bin"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

# version MODULE_DIR MODULE_PATH: the version of MODULE_PATH that go.mod requires.
version() {
	awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$1/go.mod"
}

# built NAME VERSION: true when NAME's binaries were built from VERSION.
built() { [ -f "$bin/$1.version" ] && [ "$(cat "$bin/$1.version")" = "$2" ]; }

# go_build NAME VERSION DIR LDFLAGS PACKAGES...: one `go build` into $bin,
# niced (the machine is shared), then the stamp.
go_build() {
	local name=$1 ver=$2 dir=$3 ldflags=$4
	shift 4
	if built "$name" "$ver"; then
		echo "k8s toolchain: $name $ver already built ($bin)"
		return
	fi
	echo "k8s toolchain: building $name $ver ($*) ..."
	local start=$SECONDS tmp
	tmp=$(mktemp -d "$bin/.build-XXXXXX")
	(cd "$dir" && nice -n 5 go build -trimpath -ldflags "$ldflags" -o "$tmp/" "$@")
	mv "$tmp"/* "$bin/"
	rmdir "$tmp"
	echo "$ver" >"$bin/$name.version"
	echo "k8s toolchain: $name $ver built in $((SECONDS - start))s"
}

build_kube() {
	local v
	v=$(version "$here/kube" k8s.io/kubernetes)
	local minor=${v#v1.}
	minor=${minor%%.*}
	local ld="-s -w"
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		ld="$ld -X $p.gitVersion=$v -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
	done
	go_build kube "$v" "$here/kube" "$ld" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
		k8s.io/kubernetes/cmd/kube-proxy k8s.io/kubernetes/cmd/kubectl
}

build_coredns() {
	local v
	v=$(version "$here/coredns" github.com/coredns/coredns)
	go_build coredns "$v" "$here/coredns" "-s -w" github.com/coredns/coredns
}

build_helm() {
	local v
	v=$(version "$here/helm" helm.sh/helm/v3)
	go_build helm "$v" "$here/helm" "-s -w -X helm.sh/helm/v3/internal/version.version=$v" helm.sh/helm/v3/cmd/helm
}

build_dapr() {
	local d=$root/dapr/toolchain/daprd v
	v=$(version "$d" github.com/dapr/dapr)
	go_build dapr "$v" "$d" \
		"-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${v#v} -X github.com/dapr/dapr/pkg/buildinfo.gitversion=$v -X github.com/dapr/kit/logger.DaprVersion=${v#v}" \
		github.com/dapr/dapr/cmd/operator github.com/dapr/dapr/cmd/injector github.com/dapr/dapr/cmd/placement \
		github.com/dapr/dapr/cmd/scheduler github.com/dapr/dapr/cmd/sentry
}

build_pause() {
	# The sandbox program has no dependencies; its version is its source's hash.
	local v
	v=$(sha256sum "$here/pause/main.go" | cut -c1-12)
	go_build pause "$v" "$here/pause" "-s -w" .
}

case "${1:-all}" in
kube) build_kube ;;
coredns) build_coredns ;;
helm) build_helm ;;
dapr) build_dapr ;;
pause) build_pause ;;
all) build_pause; build_dapr; build_coredns; build_helm; build_kube ;;
*) echo "usage: $0 [kube|coredns|helm|dapr|pause|all]" >&2; exit 2 ;;
esac
