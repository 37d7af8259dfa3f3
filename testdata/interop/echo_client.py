#!/usr/bin/python3
"""Interop client: Debian's python3-websockets (10.4 on Debian 12) against a
running wsgate with the echo app.

Usage: /usr/bin/python3 echo_client.py ws://127.0.0.1:PORT/ws

Run it with /usr/bin/python3: a python3 earlier on PATH (pyenv, a venv) may
not see Debian's packages. Exits non-zero with a message on the first
failure.
"""

import asyncio
import os
import sys

try:
    import websockets
except ImportError:
    sys.exit("echo_client.py: FAIL: python3-websockets is not installed "
             "(apt-get install python3-websockets) or this is not /usr/bin/python3")

NAME = "echo_client.py (python3-websockets %s)" % websockets.__version__
MIB = 1 << 20

# The Sec-WebSocket-Extensions answer to the default offer
# ("permessage-deflate; client_max_window_bits") for each gateway mode.
EXPECT = {
    "on": "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    "context": "permessage-deflate; client_max_window_bits=12",
    "off": None,
}[os.environ.get("WSGATE_COMPRESSION", "on")]


class Failure(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failure(what)


def connect(url):
    # ping_interval=None: no keepalive pings of our own to mix with the
    # test's. The default offer of permessage-deflate stays: the server
    # answers it as WSGATE_COMPRESSION says (see EXPECT).
    return websockets.connect(url, max_size=2 * MIB, ping_interval=None,
                              open_timeout=10, close_timeout=10)


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), 10)


async def echo(url):
    async with connect(url) as ws:
        accepted = ws.response_headers.get("Sec-WebSocket-Extensions")
        check(accepted == EXPECT, "extensions answer %r, want %r" % (accepted, EXPECT))

        # Text.
        text = "Hello, wsgate! κόσμε € 😀"
        await ws.send(text)
        got = await recv(ws)
        check(got == text, "text echo: sent %r, got %r" % (text, got))

        # 1 MiB of binary: the server's default limit, which is inclusive.
        data = os.urandom(MIB)
        await ws.send(data)
        got = await recv(ws)
        check(isinstance(got, bytes) and got == data,
              "1 MiB binary echo: got %s of %d bytes, equal=%s"
              % (type(got).__name__, len(got), got == data))

        # 1 MiB of compressible text, twice (context takeover refers back).
        big = "".join('{"seq":%d,"user":"u%d","text":"hello"},' % (i, i % 13)
                      for i in range(40000))[:MIB - 3] + "€"
        check(len(big.encode()) == MIB, "test bug: %d bytes" % len(big.encode()))
        for _ in range(2):
            await ws.send(big)
            got = await recv(ws)
            check(got == big, "1 MiB text echo: got %d chars" % len(got))

        # A fragmented message: send() of an iterable sends one frame per
        # item, the first with the opcode and FIN clear, then continuations.
        parts = ["frag", "mented ", "κό", "σμε", ""]
        await ws.send(parts)
        got = await recv(ws)
        check(got == "".join(parts), "fragmented text echo: got %r" % got)
        bparts = [b"\x00\x01", b"", b"\xfe\xff" * 1000]
        await ws.send(bparts)
        got = await recv(ws)
        check(got == b"".join(bparts), "fragmented binary echo: got %d bytes" % len(got))

        # Ping: the waiter resolves only when a pong carrying this exact
        # payload arrives (RFC 6455 §5.5.3).
        payload = b"\x00ping \xff\x80 payload"
        waiter = await ws.ping(payload)
        try:
            await asyncio.wait_for(waiter, 10)
        except asyncio.TimeoutError:
            raise Failure("no pong carrying the ping's payload %r" % payload)

        # Close with 1000: the server must answer with 1000.
        await ws.close(1000, "done")
        check(ws.close_code == 1000,
              "close: server answered %s %r, want 1000" % (ws.close_code, ws.close_reason))


async def too_big(url):
    # One byte over the default 1 MiB limit: the server closes with 1009.
    async with connect(url) as ws:
        await ws.send(bytes(MIB + 1))
        try:
            got = await recv(ws)
            raise Failure("1 MiB + 1 byte: echoed %d bytes, want close 1009" % len(got))
        except websockets.ConnectionClosed as e:
            check(e.rcvd is not None and e.rcvd.code == 1009,
                  "1 MiB + 1 byte: closed with %s, want 1009" % e)


async def main(url):
    await echo(url)
    await too_big(url)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: echo_client.py ws://HOST:PORT/ws")
    try:
        asyncio.run(asyncio.wait_for(main(sys.argv[1]), 60))
    except Failure as e:
        sys.exit("%s: FAIL: %s" % (NAME, e))
    except Exception as e:  # a library error or a timeout is a failure too
        sys.exit("%s: FAIL: %s: %s" % (NAME, type(e).__name__, e))
    print("%s: ok" % NAME)
