#!/usr/bin/env bash
# Boots a real single-node Kubernetes on this machine and deploys ordermesh on
# it (`make k8s-up`): etcd, containerd, runc and the CNI plugins from Debian;
# Kubernetes, CoreDNS and Dapr's control plane from the binaries
# dapr/kubernetes/toolchain/build.sh built (never built here); Dapr installed
# with Helm from its official chart; the images imported without a registry;
# then an overlay applied and every rollout awaited.
# Everything runs as background processes (no systemd here) with pid files in
# .run/k8s/pids; `make k8s-down` (down.sh) stops them and removes what they
# made. Root is needed (network links, iptables, mounts).
# Usage: up.sh [redis|rabbitmq]   (the overlay: the broker behind orderpubsub)
set -euo pipefail
source "$(dirname "$0")/lib.sh"
overlay=${1:-redis}
[ -d "$k8s_here/../overlays/$overlay" ] || die "no overlay $overlay (redis or rabbitmq)"
[ "$(id -u)" = 0 ] || die "run as root: the cluster makes network links, iptables rules and mounts"

host_packages() {
	local missing=()
	command -v containerd >/dev/null || missing+=(containerd)
	command -v runc >/dev/null || missing+=(runc)
	[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
	command -v etcd >/dev/null || missing+=(etcd-server)
	command -v conntrack >/dev/null || missing+=(conntrack)
	command -v iptables >/dev/null || missing+=(iptables)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	command -v openssl >/dev/null || missing+=(openssl)
	if [ ${#missing[@]} -gt 0 ]; then
		say "installing Debian packages: ${missing[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$state/logs/apt.log" 2>&1 ||
			die "apt-get install failed (log: $state/logs/apt.log)"
	fi
}

check_toolchain() {
	local b
	for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns helm pause \
		operator injector placement scheduler sentry; do
		[ -x "$bin/$b" ] || die "$bin/$b is missing: \`make k8s-toolchain\` builds it (once)"
	done
}

network() {
	cat /proc/sys/net/ipv4/ip_forward >"$state/ip_forward.saved"
	sysctl -qw net.ipv4.ip_forward=1
	if ! ip link show k8sbr0 >/dev/null 2>&1; then
		ip link add k8sbr0 type bridge
		ip addr add "$node_ip/32" dev k8sbr0
		ip link set k8sbr0 up
	fi
}

# A self-signed PKI for this cluster only: a CA, the API server's
# certificate, the admin's and the kubelet's client certificates, the
# service-account signing key.
certs() {
	local p=$state/pki
	mkdir -p "$p"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/ca.key" -out "$p/ca.crt" -days 7 -subj "/CN=ordermesh-k8s-ca" 2>/dev/null
	openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
	openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
	cert apiserver kube-apiserver "" "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost,IP:10.96.0.1,IP:127.0.0.1,IP:$node_ip"
	cert admin admin system:masters ""
	cert kubelet "system:node:$node_name" system:nodes "DNS:$node_name,IP:$node_ip,IP:127.0.0.1"
	kubeconfig admin
	kubeconfig kubelet
}

# cert NAME CN O SAN: a key and a certificate signed by the cluster's CA.
cert() {
	local p=$state/pki n=$1 subj="/CN=$2"
	[ -z "$3" ] || subj="/O=$3/CN=$2"
	openssl genrsa -out "$p/$n.key" 2048 2>/dev/null
	openssl req -new -key "$p/$n.key" -out "$p/$n.csr" -subj "$subj" 2>/dev/null
	{
		echo "basicConstraints=CA:FALSE"
		echo "keyUsage=digitalSignature,keyEncipherment"
		echo "extendedKeyUsage=serverAuth,clientAuth"
		[ -z "$4" ] || echo "subjectAltName=$4"
	} >"$p/$n.ext"
	openssl x509 -req -in "$p/$n.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial -out "$p/$n.crt" -days 7 -extfile "$p/$n.ext" 2>/dev/null
}

kubeconfig() {
	cat >"$state/$1.kubeconfig" <<K
apiVersion: v1
kind: Config
clusters:
- cluster: {certificate-authority: $state/pki/ca.crt, server: "https://$node_ip:6443"}
  name: ordermesh
users:
- name: $1
  user: {client-certificate: $state/pki/$1.crt, client-key: $state/pki/$1.key}
contexts:
- context: {cluster: ordermesh, user: $1, namespace: $namespace}
  name: ordermesh
current-context: ordermesh
K
}

configs() {
	mkdir -p "$state/containerd" "$state/cni/net.d" "$state/cni/ipam" "$state/kubelet" "$state/pod-logs"
	# restrict_oom_score_adj: root here lacks CAP_SYS_RESOURCE, and runc
	# fails every sandbox ("can't get final child's PID from pipe") when CRI
	# asks for an OOM score it may not set.
	cat >"$state/containerd/config.toml" <<T
version = 2
root = "$state/containerd/root"
state = "$state/containerd/state"
[grpc]
  address = "$state/containerd/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/k8s/pause:local"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "$(command -v runc)"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$state/cni/net.d"
T
	# firewall: accepts the pods' forwarded traffic even when the FORWARD
	# policy is DROP (as dockerd leaves it).
	cat >"$state/cni/net.d/10-bridge.conflist" <<T
{
  "cniVersion": "1.0.0",
  "name": "ordermesh",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$pod_cidr"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$state/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"},
    {"type": "loopback"}
  ]
}
T
	# No systemd and cgroup v1 here: cgroupfs, and v1 allowed.
	cat >"$state/kubelet.yaml" <<T
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $state/pki/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$state/containerd/containerd.sock
clusterDNS: [$dns_ip]
clusterDomain: cluster.local
resolvConf: $state/resolv.conf
tlsCertFile: $state/pki/kubelet.crt
tlsPrivateKeyFile: $state/pki/kubelet.key
podLogsDir: $state/pod-logs
imageGCHighThresholdPercent: 100
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%"}
serializeImagePulls: false
T
	cat >"$state/kube-proxy.yaml" <<T
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $state/admin.kubeconfig}
mode: iptables
clusterCIDR: $cluster_cidr
hostnameOverride: $node_name
conntrack: {maxPerCore: 0}
T
	# Pods with dnsPolicy Default (CoreDNS) get this: the cluster has no
	# upstream DNS, on purpose (no traffic leaves this machine).
	echo "nameserver 127.0.0.1" >"$state/resolv.conf"
}

runtime() {
	mkdir -p "$state/etcd"
	start etcd etcd --name ordermesh --data-dir "$state/etcd" \
		--listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
		--listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
		--initial-cluster ordermesh=http://127.0.0.1:2380
	start containerd containerd --config "$state/containerd/config.toml"
	wait_for "containerd" 30 ctr_cmd version
	local f
	for f in "$images"/*.tar; do
		ctr_cmd images import "$f" >/dev/null || die "import $f"
	done
}

control_plane() {
	local p=$state/pki
	start apiserver "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
		--advertise-address="$node_ip" --bind-address="$node_ip" --secure-port=6443 \
		--tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" --client-ca-file="$p/ca.crt" \
		--kubelet-client-certificate="$p/admin.crt" --kubelet-client-key="$p/admin.key" \
		--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-cluster-ip-range="$service_cidr" --authorization-mode=Node,RBAC --allow-privileged=true
	wait_for "API server" 90 kubectl get --raw /readyz
	start controller-manager "$bin/kube-controller-manager" --kubeconfig="$state/admin.kubeconfig" \
		--authentication-kubeconfig="$state/admin.kubeconfig" --authorization-kubeconfig="$state/admin.kubeconfig" \
		--service-account-private-key-file="$p/sa.key" --root-ca-file="$p/ca.crt" \
		--cluster-signing-cert-file="$p/ca.crt" --cluster-signing-key-file="$p/ca.key" \
		--use-service-account-credentials=true --leader-elect=false --bind-address=127.0.0.1 \
		--service-cluster-ip-range="$service_cidr"
	start scheduler "$bin/kube-scheduler" --kubeconfig="$state/admin.kubeconfig" \
		--authentication-kubeconfig="$state/admin.kubeconfig" --authorization-kubeconfig="$state/admin.kubeconfig" \
		--leader-elect=false --bind-address=127.0.0.1
	start kubelet "$bin/kubelet" --config="$state/kubelet.yaml" --kubeconfig="$state/kubelet.kubeconfig" \
		--root-dir="$state/kubelet" --node-ip="$node_ip" --hostname-override="$node_name"
	start kube-proxy "$bin/kube-proxy" --config="$state/kube-proxy.yaml"
	wait_for "node $node_name registered" 120 kubectl get node "$node_name"
	kubectl wait --for=condition=Ready "node/$node_name" --timeout=120s >/dev/null
}

install_coredns() {
	sed "s|@IMAGE@|localhost/k8s/coredns:$(cat "$bin/coredns.version")|; s|@DNS_IP@|$dns_ip|" "$k8s_here/coredns.yaml" |
		kubectl apply -f - >/dev/null
	kubectl -n kube-system rollout status deploy/coredns --timeout=180s >/dev/null
}

# Dapr from its official chart, which is inside the github.com/dapr/dapr
# module: CRDs first (Sentry crash-loops when it starts before the
# Configuration CRD exists), then `helm install`.
install_dapr() {
	local chart
	chart=$(go -C "$root/dapr/toolchain/daprd" list -m -f '{{.Dir}}' github.com/dapr/dapr)/charts/dapr
	[ -f "$chart/Chart.yaml" ] || die "Dapr's chart is not in the Go module cache ($chart)"
	helm show crds "$chart" | kubectl apply -f - >/dev/null
	kubectl wait --for condition=established crd --all --timeout=60s >/dev/null
	helm install dapr "$chart" --namespace dapr-system --create-namespace --skip-crds \
		--set global.registry="$dapr_registry" --set global.tag="$dapr_version" \
		--set global.imagePullPolicy=Never --set dapr_sidecar_injector.sidecarImagePullPolicy=Never \
		--set dapr_sidecar_injector.sidecarDropALLCapabilities=true \
		--set global.logAsJson=true \
		--set global.actors.enabled=false --set global.scheduler.enabled=false \
		--wait --timeout 5m >"$state/logs/helm.log" 2>&1 || die "helm install failed (log: $state/logs/helm.log)"
}

mkdir -p "$state/logs" "$state/pids"
if compgen -G "$state/pids/*.pid" >/dev/null; then
	die "a cluster is already up (pid files in $state/pids): \`make k8s-down\` first"
fi
step "host packages" host_packages
check_toolchain
step "images" "$k8s_here/images.sh"
step "network: ip_forward, bridge k8sbr0 ($node_ip)" network
step "certificates" certs
configs
step "etcd, containerd, image import" runtime
step "Kubernetes $(kubectl version --client -o json | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | head -1) control plane, kubelet, kube-proxy; node Ready" control_plane
step "CoreDNS" install_coredns
step "Dapr $dapr_version control plane (Helm, official chart)" install_dapr
"$k8s_here/deploy.sh" "$overlay"
gw=$(kubectl -n "$namespace" get svc gateway -o jsonpath='{.spec.clusterIP}')
say "up: ordermesh ($overlay overlay) on Kubernetes, Dapr $dapr_version"
cat <<M

  export KUBECONFIG=$state/admin.kubeconfig PATH=$bin:\$PATH
  kubectl get pods -n $namespace                      # every pod 2/2: the app and its daprd
  curl http://$gw/api/status -H "Authorization: Bearer \$(bin/devtoken operator)"   # the gateway's Service (this machine routes to it)
  kubectl -n $namespace port-forward svc/gateway 18080:80   # or through a port-forward
  make k8s-down                                       # stops it all, leaves nothing behind
M
