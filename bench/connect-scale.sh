#!/usr/bin/env bash
# bench/connect-scale.sh: hold many idle connections against several
# wsgate processes sharing one port (--reuse-port), and report memory per
# connection. Beyond one process's 20,000 descriptors both sides need
# several processes: GATEWAYS servers and loadtest --procs clients from many
# 127.0.0.x source addresses.
#
#   bench/connect-scale.sh                        # 100,000 connections
#   CONNS=20000 GATEWAYS=2 PROCS=2 bench/connect-scale.sh
#
# BIN is a directory holding wsgate and loadtest (built here if unset).
# Prints each gateway's RSS before and while holding, the RSS slope per
# connection (user space), and kernel slab per socket pair from
# /proc/meminfo (both ends live on this machine, so it is halved).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CONNS=${CONNS:-100000}
GATEWAYS=${GATEWAYS:-8}
PROCS=${PROCS:-8}
RAMP=${RAMP:-20000}
HOLD=${HOLD:-20s}
PORT=${PORT:-65200}
SOURCES=${SOURCES:-127.0.0.1-127.0.0.40}
LOOPS=${LOOPS:-2}
if [ -z "${BIN:-}" ]; then
	BIN=$root/bin/scale
	mkdir -p "$BIN"
	(cd "$root" && go build -o "$BIN/wsgate" ./cmd/gateway && go build -o "$BIN/loadtest" ./loadtest)
fi
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

rss_kb() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
slab_kb() { awk '/^Slab:/{print $2}' /proc/meminfo; }

pids=()
for i in $(seq 1 "$GATEWAYS"); do
	"$BIN/wsgate" --listen "127.0.0.1:$PORT" --reuse-port --loops "$LOOPS" --demo=false --admin "" \
		--log-level warn 2>"$work/gw$i.log" &
	pids+=($!)
done
for _ in $(seq 1 100); do
	curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
sleep 1
before=0
for p in "${pids[@]}"; do before=$((before + $(rss_kb "$p"))); done
slab_before=$(slab_kb)

ready=$work/ready
"$BIN/loadtest" connect --url "ws://127.0.0.1:$PORT/ws" --conns "$CONNS" --procs "$PROCS" \
	--source-ips "$SOURCES" --ramp "$RAMP" --max-pending 2000 --duration "$HOLD" \
	--ready-file "$ready" --json "$work/report.json" > "$work/loadtest.out" 2>&1 &
lt=$!
while [ ! -e "$ready" ] && kill -0 $lt 2>/dev/null; do sleep 0.2; done
sleep 3
during=0
per=()
for p in "${pids[@]}"; do r=$(rss_kb "$p"); during=$((during + r)); per+=("$r"); done
slab_during=$(slab_kb)
wait $lt || true
cat "$work/loadtest.out"
established=$(grep -o '"established": *[0-9]*' "$work/report.json" | grep -o '[0-9]*$')
echo
echo "gateways: $GATEWAYS x $LOOPS loops on 127.0.0.1:$PORT (SO_REUSEPORT); RSS KiB while holding: ${per[*]}"
echo "connections established: $established of $CONNS"
echo "gateway RSS: before ${before} KiB, holding ${during} KiB"
awk -v b="$before" -v d="$during" -v n="$established" -v sb="$slab_before" -v sd="$slab_during" 'BEGIN {
	printf "user space per connection: %.0f B (RSS growth / connections)\n", (d-b)*1024/n
	printf "kernel slab per socket:    %.0f B (slab growth / 2 sockets per connection)\n", (sd-sb)*1024/n/2
}'
