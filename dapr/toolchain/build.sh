#!/usr/bin/env bash
# Builds the pinned Dapr toolchain into .dapr/bin (git-ignored): daprd (the
# sidecar, with the stable components), sentry (the certificate authority that
# gives sidecars their mTLS identities) and the dapr CLI. A binary that already
# reports the pinned version is kept, so only the first run pays for the build
# (daprd: about 5 minutes on 2 cores; the CLI: about 2).
# Usage: dapr/toolchain/build.sh [daprd|sentry|cli|all]
set -euo pipefail

cd "$(dirname "$0")"
root=$(cd ../.. && pwd)
bin=${DAPR_TOOLCHAIN_BIN:-$root/.dapr/bin}
mkdir -p "$bin"

daprd_version=$(awk '$1 == "github.com/dapr/dapr" && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == "github.com/dapr/dapr" {print $3; exit}' daprd/go.mod)
cli_version=$(awk '$1 == "github.com/dapr/cli" && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == "github.com/dapr/cli" {print $3; exit}' cli/go.mod)
export CGO_ENABLED=0 GOFLAGS=-mod=mod

build_daprd() {
	if [ -x "$bin/daprd" ] && [ "$("$bin/daprd" --version 2>/dev/null)" = "${daprd_version#v}" ]; then
		echo "toolchain: daprd ${daprd_version#v} already built ($bin/daprd)"
		return
	fi
	echo "toolchain: building daprd $daprd_version with the stable components; this takes about 5 minutes the first time ..."
	local start=$SECONDS
	(cd daprd && go build -tags stablecomponents -trimpath \
		-ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${daprd_version#v} -X github.com/dapr/dapr/pkg/buildinfo.gitversion=$daprd_version" \
		-o "$bin/daprd.tmp" github.com/dapr/dapr/cmd/daprd)
	mv "$bin/daprd.tmp" "$bin/daprd"
	echo "toolchain: daprd $("$bin/daprd" --version) built in $((SECONDS - start))s"
}

build_sentry() {
	if [ -x "$bin/sentry" ] && [ -f "$bin/sentry.version" ] && [ "$(cat "$bin/sentry.version")" = "$daprd_version" ]; then
		echo "toolchain: sentry ${daprd_version#v} already built ($bin/sentry)"
		return
	fi
	echo "toolchain: building sentry $daprd_version; this takes about 2 minutes the first time ..."
	local start=$SECONDS
	(cd daprd && go build -trimpath \
		-ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${daprd_version#v} -X github.com/dapr/dapr/pkg/buildinfo.gitversion=$daprd_version" \
		-o "$bin/sentry.tmp" github.com/dapr/dapr/cmd/sentry)
	mv "$bin/sentry.tmp" "$bin/sentry"
	echo "$daprd_version" >"$bin/sentry.version"
	echo "toolchain: sentry built in $((SECONDS - start))s"
}

build_cli() {
	if [ -x "$bin/dapr" ] && "$bin/dapr" version 2>/dev/null | grep -q "CLI version: ${cli_version#v}"; then
		echo "toolchain: dapr CLI ${cli_version#v} already built ($bin/dapr)"
		return
	fi
	echo "toolchain: building the dapr CLI $cli_version; this takes about 2 minutes the first time ..."
	local start=$SECONDS
	(cd cli && go build -trimpath \
		-ldflags "-s -w -X main.version=${cli_version#v} -X main.apiVersion=1.0" \
		-o "$bin/dapr.tmp" github.com/dapr/cli)
	mv "$bin/dapr.tmp" "$bin/dapr"
	echo "toolchain: dapr CLI ${cli_version#v} built in $((SECONDS - start))s"
}

case "${1:-all}" in
daprd) build_daprd ;;
sentry) build_sentry ;;
cli) build_cli ;;
all) build_daprd; build_sentry; build_cli ;;
*) echo "usage: $0 [daprd|sentry|cli|all]" >&2; exit 2 ;;
esac
