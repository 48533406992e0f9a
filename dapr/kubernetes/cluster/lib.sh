# Shared by the cluster scripts (sourced, not run): where things are, and how
# every step reports itself.
#
# Layout (all git-ignored):
#   .dapr/kubernetes/bin      binaries from dapr/kubernetes/toolchain/build.sh (kept)
#   .dapr/kubernetes/images   image tars (docker-save format) from images.sh (kept)
#   .run/k8s                  one cluster's state: certificates, etcd, containerd,
#                             kubelet, logs (logs/), pid files (pids/); down.sh
#                             removes it, except logs/ of the last run
# shellcheck shell=bash

k8s_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$k8s_here/../../.." && pwd)
bin=${K8S_TOOLCHAIN_BIN:-$root/.dapr/kubernetes/bin}
images=${K8S_IMAGES:-$root/.dapr/kubernetes/images}
state=${K8S_STATE:-$root/.run/k8s}
dapr_bin=${DAPR_BIN:-$root/.dapr/bin}

# The cluster's addresses: the node's (on the bridge k8sbr0, which up.sh
# makes: this machine has no dummy links), the pods' and the Services'.
node_ip=10.250.0.1
pod_cidr=10.244.0.0/24
cluster_cidr=10.244.0.0/16
service_cidr=10.96.0.0/16
dns_ip=10.96.0.10
node_name=$(hostname)

# Dapr: the version of the pinned module, and where its official chart is.
dapr_version=$(awk '$1 == "github.com/dapr/dapr" && $2 ~ /^v/ {print $2; exit}' "$root/dapr/toolchain/daprd/go.mod")
dapr_version=${dapr_version#v}
dapr_registry=localhost/dapr
namespace=ordermesh

export KUBECONFIG=$state/admin.kubeconfig
export PATH=$bin:$PATH
# Helm keeps its caches with the cluster's state, not in $HOME.
export HELM_CACHE_HOME=$state/helm/cache HELM_CONFIG_HOME=$state/helm/config HELM_DATA_HOME=$state/helm/data
ctr_cmd() { ctr -a "$state/containerd/containerd.sock" -n k8s.io "$@"; }

# The time the outermost script started: scripts it runs count from it too.
export K8S_T0=${K8S_T0:-$(date +%s)}
elapsed() { echo $(($(date +%s) - K8S_T0)); }
# say MESSAGE: a progress line with the time since the outermost script started.
say() { printf 'k8s [%4ds] %s\n' "$(elapsed)" "$*"; }
die() { printf 'k8s [%4ds] error: %s\n' "$(elapsed)" "$*" >&2; exit 1; }

# step NAME COMMAND...: runs a step and says how long it took.
step() {
	local name=$1 t=$SECONDS
	shift
	say "$name ..."
	"$@" || die "$name failed"
	say "$name: done in $((SECONDS - t))s"
}

# start NAME COMMAND...: a background process with its log in logs/NAME.log
# and its pid in pids/NAME.pid (down.sh stops it by that pid).
start() {
	local name=$1
	shift
	mkdir -p "$state/logs" "$state/pids"
	setsid "$@" >"$state/logs/$name.log" 2>&1 </dev/null &
	echo $! >"$state/pids/$name.pid"
}

# wait_for WHAT SECONDS COMMAND...: polls COMMAND every half second.
wait_for() {
	local what=$1 limit=$2 t=$SECONDS
	shift 2
	until "$@" >/dev/null 2>&1; do
		((SECONDS - t < limit)) || die "$what: not within ${limit}s"
		sleep 0.5
	done
}
