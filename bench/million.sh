#!/usr/bin/env bash
# bench/million.sh: one million concurrent WebSocket connections on one
# small machine, over loopback: --gateways wsgate processes sharing one
# port (--reuse-port, one loop each, default pings), loadtest --procs
# children from 64 127.0.0.x source addresses, the connections held with
# pings on, then a report: connections, failures, ramp time and rate,
# connect p99, the gateways' RSS (sum) and the kernel's slab growth per
# socket, and liveness closes from every gateway's own stats. With --nats
# the gateways form a cluster and every connection logs in as its own user
# (u0, u1, ...: loadtest --jwt-secret); halfway through the hold one message
# is pushed to each of --push-sample users through a gateway's admin API
# (POST /v1/users/{user}/messages, spread over the gateways, so most go
# through NATS to the node holding the user), and the report says how many
# arrived: each post's count of connections reached, and loadtest's count
# of messages received.
#
#   bench/million.sh --nats auto            # starts nats-server (Debian's, or NATS_SERVER) for the run
#   bench/million.sh                        # 1,000,000 (saturates 2 cores for many minutes)
#   bench/million.sh --conns 100000         # the same recipe at 100,000
#   bench/million.sh --conns 20000 --hold 30s
#
# Stats: each gateway runs its admin API on 127.0.0.1:ADMIN_BASE+i (loopback,
# no token needed); every --poll, bench/million/sample.py reads GET
# /v1/stats from each, the gateways' RSS, kernel slab, the /proc/stat split
# (user, system, softirq, steal, ...) and the CPU seconds of the gateways,
# loadtest, nats-server and every other process. The report
# (bench/million/report.py) is written however the run ends: ready,
# interrupted (SIGINT/SIGTERM: loadtest closes, then the report), --deadline,
# or loadtest killed; it says which, with the peak, the end and the CPU.
#
# Bounded: at most 1,000,000 connections and 64 gateways, loopback only,
# the whole run under --deadline (the gateways are killed on exit, however
# it ends). Needs curl and python3; run it on an otherwise quiet machine.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

CONNS=1000000
GATEWAYS=0     # 0: one per 19,250 connections (a process holds fewer than 20,000 descriptors)
PROCS=0        # 0: one loadtest child per 19,000 connections
RAMP=2500      # connections per second asked; the ramp goes on as long as the gateways need
MAX_PENDING=1000
HS_TIMEOUT=20s  # loadtest --handshake-timeout: a phone's client waits about this long (OkHttp: 10 s connect + 10 s read)
RETRIES=3      # loadtest --retries: a failed attempt is tried again after 0-1 s, 0-2 s, 0-4 s (as a phone's client would)
HOLD=60s
SOURCES=64
PORT=65200
ADMIN_BASE=61100
TICK=1s        # --timer-tick: deadlines to the second (pings every 30 s, pong timeout 10 s)
GW_PROCS=1     # --gomaxprocs: each gateway's GOMAXPROCS (one loop each); 0 leaves Go's default
POLL=10
DEADLINE=3600  # seconds for the whole run
NATS=""
NATS_PORT=61090 # --nats auto: nats-server on 127.0.0.1:NATS_PORT, monitoring on NATS_PORT+1
PUSH_SAMPLE=100
OUT=""
DRY=""
BIN=${BIN:-}

usage() {
	sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
	cat <<EOF

Flags (defaults in brackets):
  --conns N          connections [$CONNS]
  --gateways N       wsgate processes [one per 19,250 connections]
  --procs N          loadtest children [one per 19,000 connections]
  --ramp N           new connections per second asked [$RAMP]
  --max-pending N    attempts in flight, all children [$MAX_PENDING]
  --handshake-timeout D  each attempt's connect plus upgrade deadline [$HS_TIMEOUT]
  --retries N        a failed attempt is tried again up to N times, with jittered backoff (1 s, doubling); the report
                     counts the retries and the connections that never came up [$RETRIES]
  --hold D           how long every connection is held once all are up [$HOLD]
  --sources N        source addresses 127.0.0.1-127.0.0.N [$SOURCES]
  --port N           the gateways' shared port [$PORT]
  --admin-base N     gateway i's admin API on 127.0.0.1:(N+i) [$ADMIN_BASE]
  --timer-tick D     the gateways' --timer-tick [$TICK]
  --gomaxprocs N     each gateway's GOMAXPROCS, 0 for Go's default (one per core) [$GW_PROCS]
  --poll S           seconds between stats polls [$POLL]
  --deadline S       seconds for the whole run [$DEADLINE]
  --nats URL|auto    the gateways' --nats (a cluster), users per connection, and the push
                     halfway through the hold; auto starts nats-server on --nats-port
  --nats-port N      --nats auto's client port (monitoring on N+1) [$NATS_PORT]
  --push-sample N    users the cluster push goes to [$PUSH_SAMPLE]
  --out FILE         also write the report as JSON (with the timeline of every poll); the logs go to FILE's name less .json, plus .logs/
  --dry-run          check the machine and print the plan, start nothing
Environment: BIN, a directory with wsgate and loadtest (built into bin/million if unset).
EOF
}

while [ $# -gt 0 ]; do
	case $1 in
	--conns) CONNS=$2; shift ;;
	--gateways) GATEWAYS=$2; shift ;;
	--procs) PROCS=$2; shift ;;
	--ramp) RAMP=$2; shift ;;
	--max-pending) MAX_PENDING=$2; shift ;;
	--handshake-timeout) HS_TIMEOUT=$2; shift ;;
	--retries) RETRIES=$2; shift ;;
	--hold) HOLD=$2; shift ;;
	--sources) SOURCES=$2; shift ;;
	--port) PORT=$2; shift ;;
	--admin-base) ADMIN_BASE=$2; shift ;;
	--timer-tick) TICK=$2; shift ;;
	--gomaxprocs) GW_PROCS=$2; shift ;;
	--poll) POLL=$2; shift ;;
	--deadline) DEADLINE=$2; shift ;;
	--nats) NATS=$2; shift ;;
	--nats-port) NATS_PORT=$2; shift ;;
	--push-sample) PUSH_SAMPLE=$2; shift ;;
	--out) OUT=$2; shift ;;
	--dry-run) DRY=1 ;;
	-h | --help) usage; exit 0 ;;
	*) echo "million: unknown flag $1" >&2; usage >&2; exit 2 ;;
	esac
	shift
done

die() { echo "million: $*" >&2; exit 1; }
isnum() { [[ $1 =~ ^[0-9]+$ ]]; }
for v in CONNS GATEWAYS PROCS RAMP MAX_PENDING RETRIES SOURCES PORT ADMIN_BASE POLL DEADLINE PUSH_SAMPLE NATS_PORT GW_PROCS; do
	isnum "${!v}" || die "${v,,} must be a number, not '${!v}'"
done
[ "$CONNS" -ge 1 ] && [ "$CONNS" -le 1000000 ] || die "--conns must be in 1..1,000,000"
[ "$GATEWAYS" -gt 0 ] || GATEWAYS=$(((CONNS + 19249) / 19250))
[ "$PROCS" -gt 0 ] || PROCS=$(((CONNS + 18999) / 19000))
[ "$GATEWAYS" -le 64 ] || die "--gateways must be at most 64"
[ "$SOURCES" -ge 1 ] && [ "$SOURCES" -le 254 ] || die "--sources must be in 1..254"
[ $((ADMIN_BASE + GATEWAYS)) -lt 65536 ] || die "--admin-base leaves no room for $GATEWAYS admin ports"
command -v curl >/dev/null || die "needs curl"
command -v python3 >/dev/null || die "needs python3"

# What the machine must allow: a descriptor per socket, both ends here.
fdmax=$(cat /proc/sys/fs/file-max)
[ "$fdmax" -ge $((2 * CONNS + 10000)) ] || die "fs.file-max $fdmax is under two descriptors per connection"
per_gw=$(((CONNS + GATEWAYS - 1) / GATEWAYS))
lim=$(ulimit -n)
[ "$lim" = unlimited ] || [ $((per_gw + per_gw / 50 + 100)) -le "$lim" ] ||
	die "$per_gw connections per gateway (plus SO_REUSEPORT's uneven spread) are too close to the $lim descriptors a process may hold: raise --gateways"
read -r plo phi < /proc/sys/net/ipv4/ip_local_port_range
[ $((CONNS / SOURCES)) -lt $((phi - plo)) ] || die "$((CONNS / SOURCES)) connections per source address exceed the ephemeral ports: raise --sources"
# The kernel's limit on TCP buffer memory (pages, for all sockets): past it
# the kernel logs "TCP: out of memory -- consider tuning tcp_mem" and resets
# connections. A 24 GiB machine's default (575,796 pages) was reached near
# 850,000 connections: a busy socket holds 1-1.5 KiB, two sockets per
# connection here. Ask for 4 KiB per connection.
read -r _ _ tcpmax < /proc/sys/net/ipv4/tcp_mem
[ "$tcpmax" -ge "$CONNS" ] ||
	die "net.ipv4.tcp_mem allows $tcpmax pages of TCP buffers, under the $CONNS (4 KiB per connection) this run needs; raise it first: sysctl -w net.ipv4.tcp_mem=\"$((CONNS)) $((CONNS * 3 / 2)) $((CONNS * 2))\""
avail=$(awk '/^MemAvailable:/{print $2}' /proc/meminfo)
need=$((CONNS * 12 + 262144)) # KiB: ~12 KiB per connection (gateway ~1 KiB, two kernel sockets ~9.5 KiB, client ~1 KiB, at 100,000), plus 256 MiB
[ "$avail" -ge "$need" ] || die "needs about $((need / 1024)) MiB of memory, $((avail / 1024)) MiB available"

if [ -n "$DRY" ]; then
	echo "million: plan: $CONNS connections; $GATEWAYS gateways (about $per_gw each, $lim descriptors allowed) on 127.0.0.1:$PORT," \
		"admin on 127.0.0.1:$((ADMIN_BASE + 1))-$((ADMIN_BASE + GATEWAYS)); $PROCS loadtest children, $((CONNS / SOURCES)) connections" \
		"per source address over $SOURCES; ramp $RAMP/s, at most $MAX_PENDING in flight; hold $HOLD; about $((need / 1024)) MiB of" \
		"$((avail / 1024)) MiB available; fs.file-max $fdmax; tcp_mem max $tcpmax pages; deadline ${DEADLINE}s"
	exit 0
fi
if [ -z "$BIN" ]; then
	BIN=$root/bin/million
	mkdir -p "$BIN"
	(cd "$root" && go build -o "$BIN/wsgate" ./cmd/gateway && go build -o "$BIN/loadtest" ./loadtest)
fi
if [ -n "$NATS" ] && ! "$BIN/wsgate" --help 2>&1 | grep -q -- '--nats'; then
	die "--nats: this gateway has no --nats flag (the cluster is not on this branch)"
fi
NATS_BIN=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}
if [ "$NATS" = auto ] && [ ! -x "$NATS_BIN" ]; then
	die "--nats auto needs nats-server (apt-get install nats-server, or NATS_SERVER=path)"
fi
[ -z "$NATS" ] || [ "$PUSH_SAMPLE" -le "$CONNS" ] || die "--push-sample must be at most --conns"

work=$(mktemp -d)
gw_pids=()
lt_pid=""
nats_pid=""
cleanup() {
	[ -n "$lt_pid" ] && kill "$lt_pid" 2>/dev/null || true
	for p in "${gw_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -n "$nats_pid" ] && kill "$nats_pid" 2>/dev/null || true
	wait 2>/dev/null || true
	# With --out, the gateways' and nats-server's logs stay beside it.
	if [ -n "$OUT" ]; then
		mkdir -p "${OUT%.json}.logs" && cp "$work"/*.log "$work"/loadtest.out "${OUT%.json}.logs/" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT
# SIGINT or SIGTERM (Ctrl-C, kill) ends the run, not the report: loadtest
# gets SIGINT (through timeout, which passes it on) and closes its
# connections, and the report is written from what was measured. A second
# one exits at once.
interrupted=""
on_signal() {
	[ -z "$interrupted" ] && [ -n "$lt_pid" ] || exit 130 # a second one, or nothing measured yet
	interrupted=1
	echo "million: interrupted: a last poll, then loadtest stops and the report follows (again to quit at once)" >&2
	poll || true # the figures just before the close
	kill -INT "$lt_pid" 2>/dev/null || true
}
trap on_signal INT TERM
start=$(date +%s)
deadline=$((start + DEADLINE))
# The CPU accounting starts here, before anything of the run is started.
python3 "$root/bench/million/sample.py" "$work/state.json" "$work/timeline.jsonl" init

hold_s=$(python3 -c "
import re,sys
m=re.fullmatch(r'(\d+)(ms|s|m|h)','$HOLD') or sys.exit('million: --hold wants a duration such as 60s')
print(max(1,int(int(m[1])*{'ms':0.001,'s':1,'m':60,'h':3600}[m[2]])))")
[ "$hold_s" -ge 60 ] || echo "million: note: --hold $HOLD is under the 60 s the goal asks for" >&2

# Per-process costs when a hundred processes share two cores: one P per
# gateway (it runs one loop), deadlines to the second, no demo page. The
# loadtest children run one loop each and set GOMAXPROCS to it themselves.
gw_args=(--listen "127.0.0.1:$PORT" --reuse-port --loops 1 --demo=false --log-level warn --timer-tick "$TICK")
secret=""
if [ -n "$NATS" ]; then
	if [ "$NATS" = auto ]; then
		"$NATS_BIN" -a 127.0.0.1 -p "$NATS_PORT" -m $((NATS_PORT + 1)) >"$work/nats.log" 2>&1 &
		nats_pid=$!
		NATS="nats://127.0.0.1:$NATS_PORT"
		for k in $(seq 1 100); do
			curl -fs "http://127.0.0.1:$((NATS_PORT + 1))/varz" >/dev/null 2>&1 && break
			[ "$k" = 100 ] && die "nats-server did not start: $(cat "$work/nats.log")"
			sleep 0.1
		done
	fi
	# Users: every connection logs in (loadtest --jwt-secret) as u<index>.
	# Heartbeats every 5 s rather than 1 s: 50 gateways hearing each other
	# every second would be 2,500 messages a second on two shared cores.
	secret=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
	gw_args+=(--nats "$NATS" --cluster-heartbeat 5s --cluster-timeout 10s)
fi
gw_maxprocs=${GOMAXPROCS:-}
[ "$GW_PROCS" = 0 ] || gw_maxprocs=$GW_PROCS
for i in $(seq 1 "$GATEWAYS"); do
	WSGATE_JWT_SECRET=$secret GOMAXPROCS=$gw_maxprocs "$BIN/wsgate" "${gw_args[@]}" --admin "127.0.0.1:$((ADMIN_BASE + i))" 2>"$work/gw$i.log" &
	gw_pids+=($!)
done
stats_url() { echo "http://127.0.0.1:$((ADMIN_BASE + $1))/v1/stats"; }
for i in $(seq 1 "$GATEWAYS"); do
	for k in $(seq 1 100); do
		curl -fs "$(stats_url "$i")" >/dev/null 2>&1 && break
		[ "$k" = 100 ] && die "gateway $i answers no stats on $(stats_url "$i"): $(cat "$work/gw$i.log")"
		sleep 0.1
	done
done

rss_sum() { local s=0 p; for p in "${gw_pids[@]}"; do s=$((s + $(awk '/^VmRSS/{print $2}' "/proc/$p/status"))); done; echo "$s"; }
# Slab in KiB: active objects times object size, leaving out the TIME_WAIT
# and SYN-queue caches (as bench/peers/compare does); meminfo's Slab line
# where slabinfo cannot be read.
slab_kb() {
	if [ -r /proc/slabinfo ]; then
		awk 'NR>2 && $1 !~ /^(tw_sock|request_sock)/ {s+=$2*$4} END{printf "%d\n", s/1024}' /proc/slabinfo
	else
		awk '/^Slab:/{print $2}' /proc/meminfo
	fi
}
# poll_stats FILE: one JSON object per gateway, one line each.
poll_stats() {
	local i
	: >"$1"
	for i in $(seq 1 "$GATEWAYS"); do
		curl -fs --max-time 5 "$(stats_url "$i")" >>"$1" || echo '{}' >>"$1"
		echo >>"$1"
	done
}


# cluster_push posts one message to each of $PUSH_SAMPLE users spread over
# the run (u0, u(N/S), ...), each to the admin API of gateway k mod
# GATEWAYS: whichever gateway holds the user, the cluster routes the push
# there (with G gateways, (G-1)/G of them cross NATS). Each answer says how
# many connections of the user the cluster reached; loadtest's
# messages_received, at the end, says how many arrived.
cluster_push() {
	python3 - "$CONNS" "$PUSH_SAMPLE" "$GATEWAYS" "$ADMIN_BASE" "$work/push.json" <<'PY'
import json, sys, time, urllib.request
conns, sample, gws, base = (int(x) for x in sys.argv[1:5])
out = sys.argv[5]
res = {"posted": 0, "accepted": 0, "reached": 0, "missing_users": [], "statuses": {}, "nodes_max": 0, "nodes_missing_max": 0, "answer_s_max": 0}
t0 = time.time()
for k in range(sample):
    user = "u%d" % (k * conns // sample)
    gw = k % gws + 1
    req = urllib.request.Request("http://127.0.0.1:%d/v1/users/%s/messages" % (base + gw, user), data=b"push",
                                 headers={"Content-Type": "application/octet-stream"}, method="POST")
    res["posted"] += 1
    t1 = time.time()
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, body = r.status, json.load(r)
    except urllib.error.HTTPError as e:
        status, body = e.code, {}
    except Exception as e:
        status, body = str(e), {}
    res["statuses"][str(status)] = res["statuses"].get(str(status), 0) + 1
    if status == 202:
        res["accepted"] += 1
    n = body.get("connections", 0)
    res["reached"] += n
    res["nodes_max"] = max(res["nodes_max"], body.get("nodes", 0))
    res["nodes_missing_max"] = max(res["nodes_missing_max"], body.get("nodes_missing", 0))
    res["answer_s_max"] = max(res["answer_s_max"], round(time.time() - t1, 2))
    if n != 1:
        res["missing_users"].append(user)
res["seconds"] = round(time.time() - t0, 1)
res["missing_users"] = res["missing_users"][:20]
json.dump(res, open(out, "w"))
print("million: pushed to %d users through the cluster: %d answered 202, %d connections reached, %d nodes answered (at most %d missing), %.1f s (slowest answer %.2f s)"
      % (res["posted"], res["accepted"], res["reached"], res["nodes_max"], res["nodes_missing_max"], res["seconds"], res["answer_s_max"]), file=sys.stderr)
PY
}

# The kernel's TCP counters (listen queue overflows, SYN retransmits,
# aborts) at the start, when all are up and at the end: the report gives
# their growth, which tells a full listen queue from a slow upgrade.
netstat_snap() { cat /proc/net/netstat /proc/net/snmp >"$work/netstat-$1.txt" 2>/dev/null || true; }

sleep 1
rss0=$(rss_sum)
slab0=$(slab_kb)
netstat_snap start
ready=$work/ready
lt_args=(connect --url "ws://127.0.0.1:$PORT/ws" --conns "$CONNS" --procs "$PROCS" --loops 1
	--source-ips "127.0.0.1-127.0.0.$SOURCES" --ramp "$RAMP" --max-pending "$MAX_PENDING"
	--duration "$HOLD" --handshake-timeout "$HS_TIMEOUT" --retries "$RETRIES" --backoff 1s --backoff-max 8s --ready-file "$ready" --json "$work/loadtest.json" --quiet)
[ -n "$secret" ] && lt_args+=(--jwt-secret "$secret")
[ "$CONNS" -gt 100000 ] && lt_args+=(--allow-huge)
echo "million: $CONNS connections, $GATEWAYS gateways on 127.0.0.1:$PORT, $PROCS loadtest children from $SOURCES sources, ramp $RAMP/s, hold $HOLD" >&2
# At --deadline, timeout sends SIGINT (loadtest closes its connections and
# reports); SIGKILL follows if the close takes longer than a minute plus a
# second per 5,000 connections.
timeout --signal=INT --kill-after=$((60 + CONNS / 5000)) $((deadline - $(date +%s))) "$BIN/loadtest" "${lt_args[@]}" >"$work/loadtest.out" 2>&1 &
lt_pid=$!

# While the run lasts: every --poll seconds, the gateways' stats and the
# machine (bench/million/sample.py: a row of timeline.jsonl); at the ready
# file (every connection up), RSS and slab; then the hold. The loop ends
# when loadtest does, however that happens (done, interrupted, --deadline
# reached by timeout, killed), and the report is written in every case.
rss1="" slab1="" t_ready="" next_poll=0 deadline_passed=""
poll() {
	poll_stats "$work/stats-now.json"
	local gws
	gws=$(IFS=,; echo "${gw_pids[*]}")
	read -r open lv <<<"$(python3 "$root/bench/million/sample.py" "$work/state.json" "$work/timeline.jsonl" "$(($(date +%s) - start))" \
		"$work/stats-now.json" "$gws" "$nats_pid" "$lt_pid" "$$" || echo 0 0)"
	echo "million: t=$(($(date +%s) - start))s open ${open:-0} liveness-closes ${lv:-0}" >&2
}
while kill -0 "$lt_pid" 2>/dev/null; do
	now=$(date +%s)
	if [ -z "$t_ready" ] && [ -e "$ready" ]; then
		t_ready=$now
		sleep 2 # let the last upgrades' allocations settle
		rss1=$(rss_sum)
		slab1=$(slab_kb)
		poll_stats "$work/stats-ready.json"
		netstat_snap ready
		echo "million: all up after $((t_ready - start)) s; gateway RSS $((rss1 / 1024)) MiB, slab +$(((slab1 - slab0) / 1024)) MiB" >&2
		cluster_push_at=$((t_ready + hold_s / 2))
	fi
	if [ "$now" -ge "$next_poll" ]; then
		poll
		next_poll=$((now + POLL))
	fi
	# The cluster push goes here, halfway through the hold (see below).
	if [ -n "$t_ready" ] && [ -n "$NATS" ] && [ -z "${pushed:-}" ] && [ -z "$interrupted" ] && [ "$now" -ge "$cluster_push_at" ]; then
		pushed=1
		cluster_push || true
	fi
	[ "$now" -lt "$deadline" ] || deadline_passed=1
	sleep 1
done
lt_exit=0
wait "$lt_pid" || lt_exit=$?
lt_pid=""
[ "$lt_exit" = 0 ] || echo "million: loadtest exited with $lt_exit" >&2
poll
poll_stats "$work/stats-end.json"
netstat_snap end
cat "$work/loadtest.out"

python3 "$root/bench/million/report.py" "$work" conns="$CONNS" gateways="$GATEWAYS" procs="$PROCS" sources="$SOURCES" \
	hold="$HOLD" tick="$TICK" rss0="$rss0" rss1="$rss1" slab0="$slab0" slab1="$slab1" t_ready="${t_ready:+$((t_ready - start))}" \
	pushed="${pushed:-}" out="$OUT" sample="$PUSH_SAMPLE" nats="$NATS" loadtest_exit="$lt_exit" interrupted="$interrupted" \
	deadline_passed="$deadline_passed" elapsed="$(($(date +%s) - start))"
