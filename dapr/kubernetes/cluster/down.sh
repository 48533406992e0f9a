#!/usr/bin/env bash
# Stops the cluster up.sh booted and removes everything it made on the
# machine (`make k8s-down`): its processes (by the pids in .run/k8s/pids, and
# the containers through containerd), the mounts under .run/k8s and the pods'
# network namespaces, the links cni0 and k8sbr0 and the pods' veths, every
# KUBE-* and CNI-* iptables chain, the kubelet's cgroups, and the cluster's
# state. It keeps the binaries and image tars (.dapr/kubernetes) and the last
# run's logs (.run/k8s/logs). Safe to run twice, or after a failed up.sh.
set -uo pipefail
source "$(dirname "$0")/lib.sh"

# stop NAME: SIGTERM, up to 10 s, then SIGKILL; by pid file only.
stop() {
	local f=$state/pids/$1.pid pid
	[ -f "$f" ] || return 0
	pid=$(cat "$f")
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null
		for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
		kill -9 "$pid" 2>/dev/null
	fi
	rm -f "$f"
}

containers() {
	# The kubelet goes first so that nothing restarts what is killed here.
	stop kubelet
	if [ -S "$state/containerd/containerd.sock" ]; then
		local t c
		for t in $(ctr_cmd tasks ls -q 2>/dev/null); do ctr_cmd tasks kill -s SIGKILL "$t" >/dev/null 2>&1; done
		for _ in $(seq 20); do
			ctr_cmd tasks ls 2>/dev/null | awk '$3 == "RUNNING" {found = 1} END {exit !found}' || break
			sleep 0.5
		done
		for t in $(ctr_cmd tasks ls -q 2>/dev/null); do ctr_cmd tasks delete -f "$t" >/dev/null 2>&1; done
		for c in $(ctr_cmd containers ls -q 2>/dev/null); do ctr_cmd containers rm "$c" >/dev/null 2>&1; done
	fi
	return 0
}

processes() {
	local n
	for n in kube-proxy scheduler controller-manager apiserver containerd etcd; do stop "$n"; done
	# containerd's shims outlive containerd: each left its pid in the state
	# folder.
	local f
	for f in "$state"/containerd/state/io.containerd.runtime.v2.task/*/*/shim.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	return 0
}

iptables_chains() {
	[ -x "$bin/kube-proxy" ] && "$bin/kube-proxy" --cleanup >/dev/null 2>&1
	local ipt t r c
	for ipt in iptables ip6tables; do
		for t in filter nat mangle raw; do
			# Jumps from the built-in chains first, then the chains themselves.
			$ipt -t "$t" -S 2>/dev/null | grep -E '^-A [A-Z]+ .*-j (KUBE-|CNI-)' | grep -vE '^-A (KUBE-|CNI-)' |
				sed 's/^-A/-D/' | while read -r r; do eval "$ipt -t $t $r"; done
			for c in $($ipt -t "$t" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/{print $2}'); do $ipt -t "$t" -F "$c"; done
			for c in $($ipt -t "$t" -S 2>/dev/null | awk '/^-N (KUBE-|CNI-)/{print $2}'); do $ipt -t "$t" -X "$c"; done
		done
	done
	return 0
}

mounts() {
	local m
	# Deepest first: pod volumes, sandbox shm, overlay root file systems,
	# network namespaces.
	awk -v s="$state/" '{ if (index($2, s) == 1 || $2 ~ "^/(var/)?run/netns/cni-") print $2 }' /proc/mounts | sort -r |
		while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
	rm -f /run/netns/cni-* 2>/dev/null
	return 0
}

links() {
	local l
	for l in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//'); do
		# The pods' veths hang off cni0; nothing else of the machine's.
		[ "$(basename "$(readlink -f "/sys/class/net/$l/master" 2>/dev/null)")" = cni0 ] && ip link del "$l" 2>/dev/null
	done
	ip link del cni0 2>/dev/null
	ip link del k8sbr0 2>/dev/null
	[ -f "$state/ip_forward.saved" ] && sysctl -qw net.ipv4.ip_forward="$(cat "$state/ip_forward.saved")"
	return 0
}

# The kubelet's cgroups (cgroupfs driver): kubepods* in every hierarchy.
cgroups() {
	local d
	for d in /sys/fs/cgroup/*/kubepods* /sys/fs/cgroup/*/kubepods.slice; do
		[ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
	done
	return 0
}

files() {
	# What the kubelet and the CNI plugins write outside the state folder.
	rm -rf /var/lib/cni/networks/ordermesh /var/lib/cni/results/ordermesh-* /var/log/pods /var/log/containers \
		/usr/libexec/kubernetes
	rmdir /var/lib/cni/networks /var/lib/cni/results /var/lib/cni /run/netns 2>/dev/null
	# Keep the binaries, the images and the last run's logs.
	find "$state" -mindepth 1 -maxdepth 1 ! -name logs -exec rm -rf {} + 2>/dev/null
	return 0
}

step "containers" containers
step "processes" processes
step "iptables chains" iptables_chains
step "mounts" mounts
step "network links" links
cgroups
files
say "down: nothing of the cluster is left (logs of the last run: $state/logs)"
