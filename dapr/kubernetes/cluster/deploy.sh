#!/usr/bin/env bash
# Deploys ordermesh on the cluster up.sh booted: the Secrets (made once, with
# random values), then `kubectl apply -k` of an overlay with the images this
# machine built in place of the official server images, then waits for every
# rollout. Applying the other overlay swaps the broker: the apps are
# restarted so their sidecars load the new orderpubsub.
# Usage: deploy.sh redis|rabbitmq
set -euo pipefail
source "$(dirname "$0")/lib.sh"
overlay=${1:?usage: deploy.sh redis|rabbitmq}
overlays=$k8s_here/../overlays
[ -d "$overlays/$overlay" ] || die "no overlay $overlay"

# secret NAME KEY=VALUE...: creates the Secret unless it exists.
secret() {
	local name=$1
	shift
	kubectl -n "$namespace" get secret "$name" >/dev/null 2>&1 && return
	local args=()
	for kv in "$@"; do args+=(--from-literal="$kv"); done
	kubectl -n "$namespace" create secret generic "$name" "${args[@]}" >/dev/null
}

secrets() {
	kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
	local pg redis
	pg=$(openssl rand -hex 16)
	redis=$(openssl rand -hex 16)
	secret dapr-api-token "token=$(openssl rand -hex 24)"
	secret app-api-token "token=$(openssl rand -hex 24)"
	secret redis "password=$redis"
	secret postgres "password=$pg" \
		"connectionString=host=postgres port=5432 user=ordermesh password=$pg dbname=ordermesh sslmode=disable"
	# The stand-in broker lets guest in from other pods (rabbitmq.yaml).
	secret rabbitmq "connectionString=amqp://guest:guest@rabbitmq:5672"
	# The public keys the gateway checks bearer tokens with: the development
	# key of this checkout (.run/auth, made once; tokens: bin/devtoken).
	(cd "$root" && go run ./apps/internal/devtoken -init)
	kubectl -n "$namespace" create configmap gateway-jwks --from-file=jwks.json="$root/.run/auth/jwks.json" \
		--dry-run=client -o yaml | kubectl apply -f - >/dev/null
}

apply() {
	local k=$state/deploy/$overlay
	mkdir -p "$k"
	# The overlay as it is, with the official server images replaced by the
	# stand-ins images.sh made (this machine reaches no registry).
	cat >"$k/kustomization.yaml" <<K
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - $(realpath --relative-to="$k" "$overlays/$overlay")
images:
  - {name: redis, newName: ordermesh/redis, newTag: local}
  - {name: postgres, newName: ordermesh/postgres, newTag: local}
  - {name: rabbitmq, newName: ordermesh/rabbitmq, newTag: local}
K
	kubectl apply -k "$k" >"$state/logs/apply-$overlay.log"
}

# Apps started before the overlay changed orderpubsub still run the old
# component: restart them.
restart_if_swapped() {
	local last
	last=$(cat "$state/overlay" 2>/dev/null || true)
	echo "$overlay" >"$state/overlay"
	if [ -n "$last" ] && [ "$last" != "$overlay" ]; then
		say "orderpubsub changed ($last -> $overlay): restarting the apps"
		kubectl -n "$namespace" rollout restart deploy -l app.kubernetes.io/component=service >/dev/null
	fi
}

rollouts() {
	local d
	for d in $(kubectl -n "$namespace" get deploy -o name); do
		kubectl -n "$namespace" rollout status "$d" --timeout=600s >/dev/null || die "$d did not roll out"
	done
}

step "secrets" secrets
step "kubectl apply -k overlays/$overlay" apply
restart_if_swapped
step "rollouts (every app 2 replicas, each with its daprd)" rollouts
