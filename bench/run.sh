#!/usr/bin/env bash
# bench/run.sh: build wsgate, the raw-epoll floor, the peers' servers, the load generator
# and the compare driver from source (module proxy only), then run the
# side-by-side comparison. Arguments go to the driver, e.g.
#
#   bench/run.sh --scale 0.2                      # small, 2 cores
#   bench/run.sh --server-cpu 0 --client-cpu 1-15 # 16 cores
#
# Runs as root (reads /proc/meminfo Slab); needs taskset (util-linux).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_BIN:-$root/bin/bench}
mkdir -p "$out"
cd "$root"
go build -o "$out/loadtest" ./loadtest
if [ -d cmd/gateway ]; then
	go build -o "$out/wsgate" ./cmd/gateway
else
	echo "bench: no cmd/gateway on this branch: wsgate is left out" >&2
	rm -f "$out/wsgate"
fi
(cd bench/peers && go build -o "$out/" ./floor ./gnet ./gorilla ./gws ./nbio ./compare)
exec "$out/compare" --bin "$out" "$@"
