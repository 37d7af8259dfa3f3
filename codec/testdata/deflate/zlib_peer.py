#!/usr/bin/python3
"""zlib as the peer of TestDeflateZlib: reads cases as JSON on stdin and
writes results as JSON on stdout.

"inflate" cases: inflate the Deflater's messages as a permessage-deflate
receiver with a window of 2**bits (RFC 7692 §7.2.2: append 00 00 FF FF),
one decompressor per connection with context takeover, one per message
without. Output is pulled 256 bytes at a time, so that every match beyond
those bytes comes from zlib's window, which is only 2**bits long: a
distance past the window fails with "invalid distance too far back".

"deflate" cases: compress messages as a sender with that window would
(sync flush, tail stripped, §7.2.1), for the Inflater to read.
"""

import base64
import json
import sys
import zlib

TAIL = b"\x00\x00\xff\xff"


def inflate(bits, ctx, msgs):
    out = []
    d = None
    for m in msgs:
        if d is None or not ctx:
            d = zlib.decompressobj(wbits=-bits)
        plain = [d.decompress(m + TAIL, 256)]
        while True:
            chunk = d.decompress(d.unconsumed_tail, 256)
            if not chunk and not d.unconsumed_tail:
                break
            plain.append(chunk)
        out.append(b"".join(plain))
    return out


def deflate(bits, ctx, msgs):
    out = []
    c = None
    for m in msgs:
        if c is None or not ctx:
            c = zlib.compressobj(6, zlib.DEFLATED, -bits)
        z = c.compress(m) + c.flush(zlib.Z_SYNC_FLUSH)
        assert z.endswith(TAIL)
        out.append(z[:-4])
    return out


results = []
for case in json.load(sys.stdin):
    msgs = [base64.b64decode(m) for m in case["messages"]]
    fn = inflate if case["op"] == "inflate" else deflate
    try:
        res = [base64.b64encode(m).decode() for m in fn(case["bits"], case["ctx"], msgs)]
        results.append({"messages": res})
    except zlib.error as e:
        results.append({"error": str(e)})
json.dump(results, sys.stdout)
