#!/usr/bin/env bash
# bench/compression.sh: permessage-deflate side by side (issue 13). For
# wsgate and gws (bench/peers/gws --compression), one after the other, the
# echo of 1 KiB JSON-like messages with loadtest, plain and with
# --compression (no context takeover either way), then a broadcast of 4 KiB
# to SUBS compressed subscribers. It prints, per run, the server's CPU per
# message (utime+stime from /proc/PID/stat over the whole loadtest run,
# divided by the messages it echoed or delivered), the bytes on the wire
# per message both ways and the payload bytes per message, from loadtest's
# JSON report, and for wsgate the compressions it performed (/v1/stats).
#
#   bench/compression.sh            # CONNS=250 SUBS=2000 DURATION=5s
#   CONNS=1000 SUBS=5000 bench/compression.sh
#
# Server on SERVER_CPU, client on CLIENT_CPU (taskset). Needs go, jq.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=${BENCH_BIN:-$root/bin/bench}
CONNS=${CONNS:-250}
SUBS=${SUBS:-2000}
DURATION=${DURATION:-5s}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
PORT=${PORT:-65300}
mkdir -p "$bin"
go build -o "$bin/loadtest" ./loadtest
go build -o "$bin/wsgate" ./cmd/gateway
(cd bench/peers && go build -o "$bin/" ./gws)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"; [[ -n ${pid:-} ]] && kill "$pid" 2>/dev/null || true' EXIT

ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# run SERVER SCENARIO COMPRESSION: start the server, run loadtest, print a row.
run() {
	local name=$1 scenario=$2 z=$3
	PORT=$((PORT + 1))
	local addr=127.0.0.1:$PORT args=()
	case $name in
	wsgate)
		args=(--listen "$addr" --admin "127.0.0.1:$((PORT + 100))" --demo=false --loops 1)
		[[ $scenario == fanout ]] && args+=(--app broadcast)
		;;
	gws)
		args=(--listen "$addr" --compression)
		[[ $scenario == fanout ]] && args+=(--broadcast)
		;;
	esac
	GOMAXPROCS=1 taskset -c "$SERVER_CPU" "$bin/$name" "${args[@]}" 2>"$tmp/$name.log" &
	pid=$!
	sleep 1
	local lt=(--url "ws://$addr/ws" --json "$tmp/r.json" --quiet --duration "$DURATION" --ramp 5000)
	[[ $z == on ]] && lt+=(--compression)
	local t0
	t0=$(ticks "$pid")
	if [[ $scenario == echo ]]; then
		taskset -c "$CLIENT_CPU" "$bin/loadtest" echo --conns "$CONNS" --size 1024 "${lt[@]}" >"$tmp/lt.out" 2>&1
	else
		taskset -c "$CLIENT_CPU" "$bin/loadtest" fanout --conns "$SUBS" --rate 5 --size 4096 "${lt[@]}" >"$tmp/lt.out" 2>&1
	fi
	local t1 zs=-
	t1=$(ticks "$pid")
	if [[ $name == wsgate ]]; then
		# compressions performed and publishes, from the gateway's own stats
		zs=$(curl -fsS "http://127.0.0.1:$((PORT + 100))/v1/stats" | jq -r '"\(.compressions) for \(.publishes) publishes"')
	fi
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	pid=
	jq -r --arg name "$name" --arg sc "$scenario" --arg z "$z" --argjson cpu "$(((t1 - t0) * 1000000 / hz))" '
		(if $sc == "fanout" then .fanout.delivered else .messages_received end) as $n |
		[$name, $sc, $z, $n,
		 (if $n > 0 then ($cpu / $n * 100 | round / 100) else "-" end),
		 (if $n > 0 then ((.bytes_sent + .bytes_received) / $n | round) else "-" end),
		 (if $n > 0 then ((.payload_sent + .payload_received) / $n | round) else "-" end),
		 (.errors | length), $zs] | @tsv' --arg zs "$zs" "$tmp/r.json"
}

printf 'server\tscenario\tcompression\tmessages\tserver CPU us/msg\twire B/msg (both ways)\tpayload B/msg\terror kinds\tcompressions (wsgate)\n'
for name in wsgate gws; do
	run "$name" echo off
	run "$name" echo on
	run "$name" fanout on
done
