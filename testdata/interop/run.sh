#!/usr/bin/env bash
# make interop: independent WebSocket clients against the real binary.
#
# Builds cmd/gateway, starts it on a free loopback port (the kernel picks
# it; the port is read from the startup log), waits for /healthz, then runs
#   - echo_client.py with Debian's python3-websockets, under /usr/bin/python3
#     (a python3 earlier on PATH, e.g. pyenv's, may not see Debian packages);
#   - echo_client.mjs with the npm package ws pinned in package.json.
# Each client checks text, 1 MiB binary, 1 MiB of compressible text,
# fragmented messages, ping/pong, a 1000 close and the 1009 for one byte
# over the default 1 MiB limit, with permessage-deflate negotiated (both
# clients offer it by default) with and without context takeover, and
# declined (--compression off). The
# gateway is then stopped with SIGTERM and must exit cleanly. Any failure
# fails the script; every client runs regardless, and the gateway's log is
# shown on failure.
#
# Needs: go, node and npm, /usr/bin/python3 with python3-websockets
# (.ci/run installs both client libraries).
set -uo pipefail
cd "$(dirname "$0")/../.."
here=testdata/interop

tmp=$(mktemp -d)
gw_pid=
cleanup() {
	if [[ -n $gw_pid ]] && kill -0 "$gw_pid" 2>/dev/null; then
		kill -KILL "$gw_pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
die() {
	echo "interop: $*" >&2
	if [[ -s $tmp/gateway.log ]]; then
		echo "--- gateway log ---" >&2
		tail -n 40 "$tmp/gateway.log" >&2
	fi
	exit 1
}

[[ -x /usr/bin/python3 ]] || die "/usr/bin/python3 not found"
/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
	die "python3-websockets missing for /usr/bin/python3 (apt-get install python3-websockets)"
command -v node >/dev/null || die "node not found"
if [[ ! -d $here/node_modules/ws ]]; then
	npm ci --prefix "$here" --no-audit --no-fund --loglevel=error || die "npm ci failed"
fi

echo "interop: building the gateway"
go build -o "$tmp/wsgate" ./cmd/gateway || die "go build failed"

# Each client runs against three gateways: compression on (the default),
# on with context takeover, and off; WSGATE_COMPRESSION tells it which
# Sec-WebSocket-Extensions answer to expect.
failed=()
run_mode() {
	local mode=$1
	shift
	# Default limits on purpose: the clients check that 1 MiB passes and
	# one byte more does not.
	: >"$tmp/gateway.log"
	"$tmp/wsgate" --listen 127.0.0.1:0 --admin "" --log-level info --demo=false "$@" 2>"$tmp/gateway.log" &
	gw_pid=$!

	local port=
	for _ in $(seq 100); do
		port=$(sed -n 's/.*msg="wsgate listening" addr=[^ ]*:\([0-9][0-9]*\) .*/\1/p' "$tmp/gateway.log" | head -n 1)
		[[ -n $port ]] && break
		kill -0 "$gw_pid" 2>/dev/null || die "the gateway exited at startup"
		sleep 0.1
	done
	[[ -n $port ]] || die "the gateway did not report its address"

	local healthy= status
	for _ in $(seq 100); do
		# The braces keep 2>/dev/null from sticking to the shell with exec.
		if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then
			printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' >&3
			read -r -t 5 status <&3 || status=
			exec 3<&- 3>&-
			if [[ $status == "HTTP/1.1 200"* ]]; then
				healthy=1
				break
			fi
		fi
		sleep 0.1
	done
	[[ -n $healthy ]] || die "/healthz did not answer 200 on port $port"
	local url="ws://127.0.0.1:$port/ws"
	echo "interop: gateway up at $url (compression: $mode)"

	WSGATE_COMPRESSION=$mode /usr/bin/python3 "$here/echo_client.py" "$url" || failed+=("echo_client.py ($mode)")
	WSGATE_COMPRESSION=$mode node "$here/echo_client.mjs" "$url" || failed+=("echo_client.mjs ($mode)")

	kill -0 "$gw_pid" 2>/dev/null || die "the gateway died during the clients' run"
	kill -TERM "$gw_pid"
	wait "$gw_pid"
	local rc=$?
	gw_pid=
	if ((rc != 0)); then
		failed+=("gateway exit status $rc ($mode)")
	fi
}
run_mode on
run_mode context --compression-context on
run_mode off --compression off

if ((${#failed[@]} > 0)); then
	die "FAILED: ${failed[*]}"
fi
echo "interop: ok"
