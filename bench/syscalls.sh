#!/usr/bin/env bash
# bench/syscalls.sh: system calls and context switches per echoed message,
# for each server named, one after another in the same run:
#
#   BIN=bin/bench bench/syscalls.sh [--conns N] [--env 'GOMAXPROCS=1'] floor wsgate-base wsgate gws
#
# Each server runs alone on CPU 0 (taskset), loadtest's echo (1 KiB, one in
# flight per connection) on CPU 1; after the ramp, `perf stat` counts the
# server's read, write, writev, epoll_pwait, futex and nanosleep calls and
# its context switches for 6 s, and /proc its CPU time. Per message means
# per message echoed in those 6 s. Needs perf (linux-perf) and root.
# perf's tracepoints add a little to each system call: compare the servers
# with each other, not with `make bench-peers`' CPU figures.
set -euo pipefail
BIN=${BIN:-bin/bench}
CONNS=10000
SENV=""
PORT=61500
while [ $# -gt 0 ]; do
	case $1 in
	--conns) CONNS=$2; shift 2 ;;
	--env) SENV=$2; shift 2 ;;
	--port) PORT=$2; shift 2 ;;
	-h|--help) sed -n '2,14p' "$0"; exit 0 ;;
	*) break ;;
	esac
done
[ $# -gt 0 ] || { echo "syscalls: name at least one server binary in $BIN" >&2; exit 2; }
command -v perf >/dev/null || { echo "syscalls: needs perf (apt-get install linux-perf)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
events=syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_writev,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,syscalls:sys_enter_nanosleep,context-switches
printf '%-14s %9s %8s %7s %7s %7s %7s %7s %7s %7s\n' server msg/s 'µs/msg' read write writev epoll futex nsleep ctxsw
for name in "$@"; do
	args=(--listen "127.0.0.1:$PORT" --path /ws)
	case $name in wsgate*) args+=(--loops 1 --admin= --demo=false) ;; esac
	# shellcheck disable=SC2086
	env $SENV taskset -c 0 "$BIN/$name" "${args[@]}" >"$tmp/server.log" 2>&1 &
	pid=$!
	sleep 1
	taskset -c 1 "$BIN/loadtest" echo --url "ws://127.0.0.1:$PORT/ws" --conns "$CONNS" --ramp 5000 \
		--size 1024 --inflight 1 --duration 14s --source-ips 127.0.0.1-127.0.0.8 >"$tmp/lt.txt" 2>&1 &
	lt=$!
	sleep $((CONNS / 5000 + 4))
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	perf stat -x, -e "$events" -p "$pid" -o "$tmp/stat" -- sleep 6 >/dev/null 2>&1
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	wait "$lt" || true
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	python3 - "$name" "$tmp/lt.txt" "$tmp/stat" "$t0" "$t1" "$(getconf CLK_TCK)" <<'PY'
import re, sys
name, lt, stat, t0, t1, hz = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
m = re.search(r'(\d+) msg/s', open(lt).read())
if not m:
    print(f"{name:<14} no echo figure: see loadtest's output"); sys.exit(0)
rate = float(m.group(1))
msgs = rate * 6
c = {}
for line in open(stat):
    p = line.strip().split(',')
    if len(p) > 2 and p[0].replace('.', '').isdigit():
        c[p[2].split(':')[-1].replace('sys_enter_', '')] = float(p[0]) / msgs
cpu = (t1 - t0) / hz
print(f"{name:<14} {rate:9.0f} {cpu*1e6/msgs:8.1f} {c.get('read',0):7.3f} {c.get('write',0):7.3f} {c.get('writev',0):7.3f} "
      f"{c.get('epoll_pwait',0)+c.get('epoll_wait',0):7.3f} {c.get('futex',0):7.3f} {c.get('nanosleep',0):7.3f} {c.get('context-switches',0):7.3f}")
PY
done
