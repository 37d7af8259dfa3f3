#!/usr/bin/env bash
# CI for the operations kit (docs/deploy/, docs/api/), called by .ci/run
# before `make test`: installs what the deploy tests need when it is
# missing (Prometheus and promtool, systemd-analyze, podman), checks the
# rules with promtool, builds the container image (make image) and runs
# the gateway from it. The Go tests in docs/deploy and gateway/openapi_test.go
# then run in `make test`, where CI=true turns a missing tool into a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

need=()
command -v prometheus >/dev/null || need+=(prometheus)
command -v promtool >/dev/null || need+=(prometheus)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v podman >/dev/null || need+=(podman)
[ -r /etc/ssl/certs/ca-certificates.crt ] || need+=(ca-certificates)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

echo "--- promtool"
promtool check rules docs/deploy/prometheus/wsgate.rules.yml
promtool test rules docs/deploy/prometheus/wsgate.rules_test.yml
promtool check config --syntax-only docs/deploy/prometheus/prometheus.yml

echo "--- make image"
tag=localhost/wsgate:ci
make image TAG="$tag"

# The image's own file system, run without a container runtime: the
# static binary from an empty root, as the image's non-root user. (This
# sandbox cannot start containers; see below.)
echo "--- the image's binary in a chroot, as uid 65532"
root=$(mktemp -d)
ctr=$(podman create "$tag")
cleanup() { podman rm -f "$ctr" >/dev/null 2>&1 || true; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null; rm -rf "$root"; }
trap cleanup EXIT
chmod 0755 "$root"   # mktemp made it 0700: the user could not enter it
podman export "$ctr" | tar -x -C "$root"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
chroot --userspec=65532:65532 "$root" /usr/local/bin/wsgate --listen "127.0.0.1:$port" --admin "" &
pid=$!
healthz() {
  python3 - "$1" <<'PY'
import sys, time, urllib.request
url = sys.argv[1]
for _ in range(100):
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                print(url, "200"); sys.exit(0)
    except Exception as e:
        err = e
    time.sleep(0.1)
print(url, "failed:", err); sys.exit(1)
PY
}
healthz "http://127.0.0.1:$port/healthz"
kill "$pid"; wait "$pid" || true; pid=

# A real container run, where the runtime works. Here crun and runc both
# fail to set RLIMIT_NPROC (the sandbox lacks CAP_SYS_RESOURCE); that is
# reported, not failed, so CI does not depend on what cannot run here.
echo "--- podman run"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
if out=$(podman run -d --rm --network host --ulimit "nofile=$(ulimit -Sn):$(ulimit -Hn)" "$tag" \
    --listen "127.0.0.1:$port" --admin "" 2>&1); then
  cid=$(echo "$out" | tail -1)
  status=0
  healthz "http://127.0.0.1:$port/healthz" || status=1
  podman rm -f "$cid" >/dev/null 2>&1 || true
  exit "$status"
else
  echo "podman run cannot start a container on this machine: $out"
fi
