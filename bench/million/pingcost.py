#!/usr/bin/env python3
"""bench/million/pingcost.py: CPU per ping over the hold of bench/million.sh runs.

    pingcost.py OUT.json...

From each --out report's timeline: the polls from 8 s after every
connection was up to 3 s before the hold ended, and between the first and
the last of them the CPU seconds of the gateways and of loadtest, the
pings the gateways sent, and the /proc/stat split. CPU per ping counts
everything the processes spent in the window (the idle cost too: compare
with a run with WSGATE_PING_INTERVAL=0). Each ping is one write and one
read on each side, so per-ping CPU is mostly kernel time.
"""
import json, sys

for f in sys.argv[1:]:
    r = json.load(open(f))
    up = r.get("all_up_after_s")
    hold = r.get("hold") or ""
    secs = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    unit = hold.lstrip("0123456789")
    hold_s = int(hold[: len(hold) - len(unit)] or 0) * secs.get(unit, 1)
    rows = [x for x in r.get("timeline", []) if up and up + 8 <= x["t"] <= up + hold_s - 3]
    if len(rows) < 2:
        print(f"{f}: no window (ended {r.get('ended')}, all up after {up})")
        continue
    a, b = rows[0], rows[-1]
    dt = b["t"] - a["t"]
    pings = b.get("pings_sent", 0) - a.get("pings_sent", 0)
    g = b["cpu_s"]["gateway"] - a["cpu_s"]["gateway"]
    lt = b["cpu_s"]["loadtest"] - a["cpu_s"]["loadtest"]
    split = {}
    for x in rows[1:]:  # each row's split covers the time since the poll before it
        for k, v in x.get("cpu_split_pct", {}).items():
            split[k] = split.get(k, 0) + v / (len(rows) - 1)
    split = {k: round(v, 1) for k, v in split.items() if k in ("user", "system", "softirq", "steal", "idle")}
    per = lambda c: "%.1f us" % (c / pings * 1e6) if pings else "-"
    print(f"{f}: {dt} s window, {b['open']:,} open, {pings:,} pings; "
          f"gateways {g:.1f} CPU s ({g / dt * 1000 / max(r['gateways'], 1):.1f} ms/s each), "
          f"loadtest {lt:.1f} CPU s ({lt / dt * 1000 / max(r['loadtest_procs'], 1):.1f} ms/s per child); "
          f"per ping: gateway {per(g)}, loadtest {per(lt)}; machine in the window (%): {split}")
