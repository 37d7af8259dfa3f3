#!/usr/bin/env bash
# bench/close-memory.sh: what loadtest's close costs in memory. Two wsgate
# gateways (--reuse-port, one loop each) on 127.0.0.1:PORT, loadtest
# connect holding N connections from 127.0.0.1-127.0.0.4, then the end:
# SIGINT while holding (int, as an interrupted bench/million.sh run) or the
# end of --duration (dur). Prints the RSS of every loadtest process
# (/proc/PID/status, parent and children summed) while holding and its
# peak during the close, per connection.
#
#   bench/close-memory.sh 15000 int
#   bench/close-memory.sh 20000 int --procs 2
#   bench/close-memory.sh 15000 dur
#
# Extra arguments go to loadtest. BIN: a directory with wsgate and loadtest
# (built into bin/close-memory if unset); PORT (61900): the gateways' port,
# their admin APIs on PORT+1 and PORT+2.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
[ $# -ge 2 ] || { sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
N=$1 MODE=$2
shift 2
case $MODE in int | dur) ;; *) echo "close-memory: mode is int or dur" >&2; exit 2 ;; esac
[[ $N =~ ^[0-9]+$ ]] && [ "$N" -ge 1 ] && [ "$N" -le 39000 ] || { echo "close-memory: N in 1..39,000 (two gateways)" >&2; exit 2; }
PORT=${PORT:-61900}
if [ -z "${BIN:-}" ]; then
	BIN=$root/bin/close-memory
	mkdir -p "$BIN"
	(cd "$root" && go build -o "$BIN/wsgate" ./cmd/gateway && go build -o "$BIN/loadtest" ./loadtest)
fi
work=$(mktemp -d)
pids=()
lp=""
cleanup() {
	[ -z "$lp" ] || kill "$lp" 2>/dev/null || true
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
for i in 1 2; do
	GOMAXPROCS=1 "$BIN/wsgate" --listen "127.0.0.1:$PORT" --reuse-port --loops 1 --demo=false --log-level warn \
		--admin "127.0.0.1:$((PORT + i))" 2>"$work/gw$i.log" &
	pids+=($!)
done
sleep 1
dur=1h
[ "$MODE" = dur ] && dur=5s
"$BIN/loadtest" connect --url "ws://127.0.0.1:$PORT/ws" --conns "$N" --loops 1 --source-ips 127.0.0.1-127.0.0.4 \
	--ramp 5000 --max-pending 1000 --duration "$dur" --ready-file "$work/ready" --quiet "$@" >"$work/lt.out" 2>&1 &
lp=$!
rss() { # KiB, the loadtest process and its children
	local s=0 p v
	for p in $lp $(pgrep -P "$lp" || true); do
		v=$(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || true)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
while [ ! -e "$work/ready" ]; do
	kill -0 "$lp" 2>/dev/null || { cat "$work/lt.out"; exit 1; }
	sleep 0.2
done
sleep 1
hold=$(rss)
[ "$MODE" = int ] && kill -INT "$lp"
peak=$hold
t0=$(date +%s%N)
while kill -0 "$lp" 2>/dev/null; do
	r=$(rss)
	[ "$r" -le "$peak" ] || peak=$r
	sleep 0.05
done
wait "$lp" || true
lp=""
t1=$(date +%s%N)
echo "close-memory: $N connections, end by $MODE: loadtest RSS $hold KiB holding, peak $peak KiB during the close:" \
	"+$((peak - hold)) KiB, $(((peak - hold) * 1024 / N)) B per connection; loadtest exited $(((t1 - t0) / 1000000)) ms after"
grep -E "^(connections|our closes|errors)" "$work/lt.out"
