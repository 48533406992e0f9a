#!/usr/bin/env bash
# Builds the pinned Dapr toolchain into .dapr/bin (git-ignored): daprd (the
# sidecar, with the stable components), sentry (the certificate authority that
# gives sidecars their mTLS identities) and the dapr CLI.
#
# The pinned releases have defects this project cannot live with; each fix is
# a small patch in dapr/toolchain/patches/ (read them for the why), applied at
# build time with `go build -overlay` to a copy of the module's own file
# (written by dapr/toolchain/overlay into .dapr/patch/, with the generated
# go.mod that -modfile names): no vendoring, the committed go.mod and the module
# cache untouched, and the build stops if a patch no longer applies exactly
# once (the upstream file changed).
#   daprd, sentry: patches/daprd-*.patch (the outbox's retry loop that never stops;
#                  RabbitMQ publishes reported as confirmed, subscriptions sharing a channel;
#                  invocations kept on a gone replica when the target has a resiliency policy)
#   dapr CLI:      patches/cli-*.patch   (run files cannot turn the scheduler off)
#
# Each binary is kept while its stamp (.dapr/bin/<name>.stamp: a hash of this
# script, the overlay tool, its patches and the pinned version) matches, so
# only the first run pays for the build (daprd: about 5 minutes on 2 cores;
# the CLI: about 2), and a changed patch rebuilds once (Go's build cache then
# recompiles only the patched packages and what imports them).
# Usage: dapr/toolchain/build.sh [daprd|sentry|cli|all]
set -euo pipefail

cd "$(dirname "$0")"
here=$(pwd)
root=$(cd ../.. && pwd)
bin=${DAPR_TOOLCHAIN_BIN:-$root/.dapr/bin}
patchdir=${DAPR_TOOLCHAIN_PATCH:-$root/.dapr/patch}
mkdir -p "$bin"

daprd_version=$(awk '$1 == "github.com/dapr/dapr" && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == "github.com/dapr/dapr" {print $3; exit}' daprd/go.mod)
cli_version=$(awk '$1 == "github.com/dapr/cli" && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == "github.com/dapr/cli" {print $3; exit}' cli/go.mod)
export CGO_ENABLED=0

# stamp <version> <patch>...: what a binary was built from.
stamp() {
	{
		echo "$1"
		shift
		cat "$here/build.sh" "$here/overlay/main.go" "$@"
	} | sha256sum | cut -d' ' -f1
}

# from_patched <binary> "<module>...": the binary was built from each patched
# module (the overlay is silently unused when a replacement is not in effect).
from_patched() {
	local info m
	info=$(go version -m "$1" 2>/dev/null) || return 1
	for m in $2; do
		grep -q "^[[:space:]]*=>[[:space:]].*/mod/$m@" <<<"$info" || return 1
	done
}

# built <name> <stamp> <module>: the binary exists, was built from this stamp,
# and carries the patches (another build may have replaced it since).
built() { [ -x "$bin/$1" ] && [ -f "$bin/$1.stamp" ] && [ "$(cat "$bin/$1.stamp")" = "$2" ] && from_patched "$bin/$1" "$3"; }

# overlay <module dir> <name> <patch>...: writes the patched files, prints the
# directory with the go.mod and overlay.json to build with.
overlay() {
	local dir=$1 name=$2
	shift 2
	(cd "$root" && go run ./dapr/toolchain/overlay 2> >(grep -v '^go: downloading ' >&2) -C "$here/$dir" -out "$patchdir/$name" "$@")
}

# quietly <command>...: runs it without Go's "go: downloading ..." lines (hundreds
# on a cold machine), so a build says what it does in two lines; errors still show.
quietly() { "$@" 2>&1 | { grep -v '^go: downloading ' || true; }; }

# install <name> <stamp> <module>: moves the fresh binary in place and records
# its stamp, after checking that it was built from the patched module.
install_bin() {
	if ! from_patched "$bin/$1.tmp.$$" "$3"; then
		echo "toolchain: $1 was not built from the patched $3 (see .dapr/patch/); not installing it" >&2
		rm -f "$bin/$1.tmp.$$"
		exit 1
	fi
	mv "$bin/$1.tmp.$$" "$bin/$1"
	echo "$2" >"$bin/$1.stamp"
}

daprd_patches=("$here"/patches/daprd-*.patch)
cli_patches=("$here"/patches/cli-*.patch)
dapr_ldflags="-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${daprd_version#v} -X github.com/dapr/dapr/pkg/buildinfo.gitversion=$daprd_version -X github.com/dapr/kit/logger.DaprVersion=${daprd_version#v}"

build_daprd() {
	local want
	want=$(stamp "$daprd_version" "${daprd_patches[@]}")
	if built daprd "$want" "dapr components-contrib"; then
		echo "toolchain: daprd ${daprd_version#v} (patched) already built ($bin/daprd)"
		return
	fi
	echo "toolchain: building daprd $daprd_version with the stable components and $(basename -a "${daprd_patches[@]}" | paste -sd' '); about 5 minutes the first time ..."
	local start=$SECONDS ov
	ov=$(overlay daprd daprd "${daprd_patches[@]}")
	(cd daprd && GOFLAGS=-mod=mod quietly go build -modfile="$ov/go.mod" -overlay="$ov/overlay.json" -tags stablecomponents -trimpath \
		-ldflags "$dapr_ldflags" -o "$bin/daprd.tmp.$$" github.com/dapr/dapr/cmd/daprd)
	install_bin daprd "$want" "dapr components-contrib"
	echo "toolchain: daprd $("$bin/daprd" --version) built in $((SECONDS - start))s"
}

build_sentry() {
	local want
	want=$(stamp "$daprd_version" "${daprd_patches[@]}")
	if built sentry "$want" dapr; then
		echo "toolchain: sentry ${daprd_version#v} already built ($bin/sentry)"
		return
	fi
	echo "toolchain: building sentry $daprd_version; about 2 minutes the first time ..."
	local start=$SECONDS ov
	ov=$(overlay daprd sentry "${daprd_patches[@]}")
	(cd daprd && GOFLAGS=-mod=mod quietly go build -modfile="$ov/go.mod" -overlay="$ov/overlay.json" -trimpath \
		-ldflags "$dapr_ldflags" -o "$bin/sentry.tmp.$$" github.com/dapr/dapr/cmd/sentry)
	install_bin sentry "$want" dapr
	# What build.sh checked before stamps: a checkout with that older script
	# then keeps this binary instead of building its own over it.
	echo "$daprd_version" >"$bin/sentry.version"
	echo "toolchain: sentry built in $((SECONDS - start))s"
}

build_cli() {
	local want
	want=$(stamp "$cli_version" "${cli_patches[@]}")
	if built dapr "$want" cli; then
		echo "toolchain: dapr CLI ${cli_version#v} (patched) already built ($bin/dapr)"
		return
	fi
	echo "toolchain: building the dapr CLI $cli_version with $(basename -a "${cli_patches[@]}" | paste -sd' '); about 2 minutes the first time ..."
	local start=$SECONDS ov
	ov=$(overlay cli cli "${cli_patches[@]}")
	(cd cli && GOFLAGS=-mod=mod quietly go build -modfile="$ov/go.mod" -overlay="$ov/overlay.json" -trimpath \
		-ldflags "-s -w -X main.version=${cli_version#v} -X main.apiVersion=1.0" \
		-o "$bin/dapr.tmp.$$" github.com/dapr/cli)
	install_bin dapr "$want" cli
	echo "toolchain: dapr CLI ${cli_version#v} built in $((SECONDS - start))s"
}

case "${1:-all}" in
daprd) build_daprd ;;
sentry) build_sentry ;;
cli) build_cli ;;
all) build_daprd; build_sentry; build_cli ;;
*) echo "usage: $0 [daprd|sentry|cli|all]" >&2; exit 2 ;;
esac
