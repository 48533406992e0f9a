#!/usr/bin/env bash
# Writes a container image as a docker-save tar (one layer, FROM scratch),
# with no daemon and no registry: `ctr images import` loads it.
# Usage: mkimg.sh OUT.tar REF ROOTFS_DIR CONFIG_JSON
#   CONFIG_JSON is the image's "config" object, e.g.
#   '{"Entrypoint":["/app"],"User":"65532"}'
# Files keep their owners (numeric: a root file system's users are its own);
# times are fixed, so the same inputs give the same image id.
set -euo pipefail
out=$1 ref=$2 rootfs=$3 config=$4
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
tar --sort=name --numeric-owner --mtime=@0 -C "$rootfs" -cf "$w/layer.tar" .
diff=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"dapr/kubernetes/cluster/mkimg.sh"}]}' \
	"$config" "$diff" >"$w/config.json"
cfg=$(sha256sum "$w/config.json" | cut -d' ' -f1)
mv "$w/config.json" "$w/$cfg.json"
mkdir "$w/$diff"
mv "$w/layer.tar" "$w/$diff/layer.tar"
printf '[{"Config":"%s.json","RepoTags":["%s"],"Layers":["%s/layer.tar"]}]' "$cfg" "$ref" "$diff" >"$w/manifest.json"
tar -C "$w" -cf "$out.tmp" manifest.json "$cfg.json" "$diff"
mv "$out.tmp" "$out"
