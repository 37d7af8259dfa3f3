#!/usr/bin/python3
"""A python3-websockets client (Debian's, 10.4 on Debian 12) for
TestDeflatePeers: it connects with permessage-deflate, sends messages of
every kind and checks each echo. Exits non-zero on the first failure.

Usage: peer_client.py ws://127.0.0.1:PORT/ default|window10
"""

import asyncio
import random
import sys

import websockets
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, PerMessageDeflate)


def text(n, seed):
    rnd = random.Random(seed)
    words = ["message", "gateway", "window", "the", "of", "compression",
             "subscriber", "event", "json", "a", "and", "latency"]
    out = []
    size = 0
    while size < n:
        w = rnd.choice(words)
        out.append(w)
        size += len(w) + 1
    return " ".join(out)[:n]


async def main(url, mode):
    kwargs = dict(max_size=4 << 20, ping_interval=None, open_timeout=10,
                  close_timeout=10)
    if mode == "window10":
        kwargs["compression"] = None
        kwargs["extensions"] = [ClientPerMessageDeflateFactory(
            server_max_window_bits=10, client_max_window_bits=True)]
    async with websockets.connect(url, **kwargs) as ws:
        exts = [e for e in ws.extensions if isinstance(e, PerMessageDeflate)]
        if len(exts) != 1:
            sys.exit("FAIL: permessage-deflate not negotiated: %r" % ws.extensions)
        e = exts[0]
        print("agreed remote_no_context_takeover=%s local_no_context_takeover=%s "
              "remote_max_window_bits=%s local_max_window_bits=%s" % (
                  e.remote_no_context_takeover, e.local_no_context_takeover,
                  e.remote_max_window_bits, e.local_max_window_bits))
        msgs = [
            '{"type":"chat","text":"%s"}' % text(1000, 1),
            '{"type":"chat","text":"%s"}' % text(1000, 2),
            text(64 << 10, 3),
            text(1 << 20, 4),
            random.Random(5).randbytes(200 << 10),
            "",
            "h\u00e9llo \u20ac \U0001F600" * 50,
        ]
        for i, m in enumerate(msgs):
            await ws.send(m)
            if i == 2:
                pong = await ws.ping(b"between")
                await asyncio.wait_for(pong, 10)
            got = await ws.recv()
            if got != m:
                sys.exit("FAIL: echo of message %d differs (%d bytes back of %d)" % (i, len(got), len(m)))
        # A fragmented message, compressed as one DEFLATE stream.
        parts = [text(3000, 6), text(5, 7), text(70000, 8)]
        await ws.send(parts)
        got = await ws.recv()
        if got != "".join(parts):
            sys.exit("FAIL: echo of the fragmented message differs")
    print("OK")


asyncio.run(main(sys.argv[1], sys.argv[2]))
