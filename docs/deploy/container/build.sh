#!/usr/bin/env bash
# make image: builds a static wsgate and the image of Dockerfile beside
# this script, FROM scratch (nothing is pulled), with the first builder
# that works: podman, buildah, or docker with a running engine.
#   TAG=wsgate:dev make image
set -euo pipefail
cd "$(dirname "$0")/../../.."
here=docs/deploy/container
tag=${TAG:-wsgate:latest}

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$ctx/wsgate" ./cmd/gateway
cp "$here/passwd" "$here/group" "$ctx/"
ca=/etc/ssl/certs/ca-certificates.crt
if [ ! -r "$ca" ]; then
  echo "build.sh: $ca is missing (Debian: apt-get install ca-certificates)" >&2
  exit 1
fi
cp "$ca" "$ctx/"

if command -v podman >/dev/null; then
  podman build -f "$here/Dockerfile" -t "$tag" "$ctx"
elif command -v buildah >/dev/null; then
  buildah bud -f "$here/Dockerfile" -t "$tag" "$ctx"
elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker build -f "$here/Dockerfile" -t "$tag" "$ctx"
else
  echo "build.sh: no podman, buildah or working docker (Debian: apt-get install podman)" >&2
  exit 1
fi
echo "built $tag"
