#!/usr/bin/env bash
# bench/stall.sh: does a gateway that was stopped take its own absence for
# its clients' death? One wsgate (one loop, pings every 2 s, pong timeout
# 1 s) holds --conns loadtest connections; three times, the client stops
# (SIGSTOP) for PRE (0.4 s) while the gateway pings on, then the gateway
# stops too, for 4 s (longer than ping interval and pong timeout
# together); the gateway resumes first and the client DELAY (0.4 s) later,
# as a starved machine resumes them. The client is never silent for more
# than PRE + DELAY = 0.8 s of the gateway's running time, under the pong
# timeout: every liveness close is a false one. Prints the gateway's liveness closes,
# rescues (Stats.LivenessRescues) and measured lag, for each binary given.
#
#   bench/stall.sh                                  # builds cmd/gateway and loadtest
#   BIN=bin/bench bench/stall.sh wsgate-base wsgate # compare two builds in BIN
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
CONNS=${CONNS:-5000}
PORT=${PORT:-65400}
PRE=${PRE:-0.4}
DELAY=${DELAY:-0.4}
BIN=${BIN:-}
if [ -z "$BIN" ]; then
	BIN=$root/bin/stall
	mkdir -p "$BIN"
	(cd "$root" && go build -o "$BIN/wsgate" ./cmd/gateway && go build -o "$BIN/loadtest" ./loadtest)
fi
[ $# -gt 0 ] || set -- wsgate
# The gateway on core 0 and the client on core 1, as bench/peers runs them
# (without pinning, the scheduler's choices change how many pongs are
# late; the count of false closes varies more).
srv=() cli=()
if command -v taskset >/dev/null && [ "$(nproc)" -ge 2 ]; then
	srv=(taskset -c 0) cli=(taskset -c 1)
fi
work=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done; rm -rf "$work"' EXIT
for bin in "$@"; do
	PORT=$((PORT + 2))
	GOMAXPROCS=1 "${srv[@]}" "$BIN/$bin" --listen "127.0.0.1:$PORT" --loops 1 --admin "127.0.0.1:$((PORT + 1))" --demo=false \
		--ping-interval 2s --pong-timeout 1s --log-level warn 2>"$work/$bin.log" &
	gw=$!
	pids=("$gw")
	for k in $(seq 1 100); do
		curl -fs "http://127.0.0.1:$((PORT + 1))/v1/stats" >/dev/null 2>&1 && break
		[ "$k" = 100 ] && { echo "stall: $bin did not start: $(cat "$work/$bin.log")" >&2; exit 1; }
		sleep 0.1
	done
	"${cli[@]}" "$BIN/loadtest" connect --url "ws://127.0.0.1:$PORT/ws" --conns "$CONNS" --ramp 5000 --duration 30s \
		--quiet --loops 1 --json "$work/lt.json" >/dev/null 2>&1 &
	lt=$!
	pids+=("$lt")
	sleep 6
	for _ in 1 2 3; do
		kill -STOP "$lt"
		sleep "$PRE"
		kill -STOP "$gw"
		sleep 4
		kill -CONT "$gw"
		sleep "$DELAY"
		kill -CONT "$lt"
		sleep 3
	done
	wait "$lt" || true
	curl -fs "http://127.0.0.1:$((PORT + 1))/v1/stats" >"$work/stats.json"
	kill "$gw"
	wait "$gw" 2>/dev/null || true
	python3 - "$bin" "$work/stats.json" "$work/lt.json" <<'PY'
import json, sys
name, st, lt = sys.argv[1], json.load(open(sys.argv[2])), json.load(open(sys.argv[3]))
c = lt["connections"]
print(f"stall: {name}: {c['established']} connections, {st['closes'].get('liveness', 0)} liveness closes "
      f"({c['closed_by_server']} closed by the server, loadtest), {st.get('liveness_rescues', 'n/a')} rescues, "
      f"{st.get('loop_stalls', 'n/a')} stalls measured, longest {st.get('loop_lag_max', 0) / 1e9:.1f} s")
PY
done
