#!/usr/bin/env python3
"""bench/million/report.py: bench/million.sh's report, however the run ended.

    report.py WORK key=value...

WORK holds timeline.jsonl (bench/million/sample.py's rows), state.json
(the processes seen), stats-end.json and stats-ready.json (each gateway's
/v1/stats, one a line), loadtest.json (absent when loadtest was killed or
never wrote it) and push.json (the cluster push, if it ran). The keys are
the run's settings and what the script saw (see million.sh). Prints the
text report and, with out=FILE, writes it as JSON. Every figure that needs
loadtest's own report says so when there is none.
"""
import json, os, sys

work = sys.argv[1]
kv = dict(a.split("=", 1) for a in sys.argv[2:])
num = lambda k: int(kv.get(k) or 0)


def load(name):
    try:
        return json.load(open(os.path.join(work, name)))
    except (OSError, ValueError):
        return None


def rows(name):
    out = []
    try:
        for line in open(os.path.join(work, name)):
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    out.append({})
    except OSError:
        pass
    return out


def netstat(name):
    """The kernel's TCP counters of one snapshot (/proc/net/netstat and
    /proc/net/snmp: pairs of header and value lines), as {Group.Name: n}."""
    out = {}
    try:
        lines = open(os.path.join(work, "netstat-%s.txt" % name)).read().splitlines()
    except OSError:
        return out
    for head, vals in zip(lines[::2], lines[1::2]):
        h, v = head.split(), vals.split()
        if h and v and h[0] == v[0]:
            for k, x in zip(h[1:], v[1:]):
                try:
                    out[h[0].rstrip(":") + "." + k] = int(x)
                except ValueError:
                    pass
    return out


TCP_KEYS = ("TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.TCPReqQFullDrop", "TcpExt.TCPBacklogDrop",
            "TcpExt.TCPSynRetrans", "TcpExt.TCPTimeouts", "TcpExt.TCPAbortOnMemory", "TcpExt.TCPAbortOnTimeout",
            "Tcp.RetransSegs", "Tcp.AttemptFails", "Tcp.EstabResets", "Tcp.OutRsts")
ns = {k: netstat(k) for k in ("start", "ready", "end")}


def ns_growth(a, b):
    if not ns[a] or not ns[b]:
        return None
    return {k.split(".", 1)[1]: ns[b].get(k, 0) - ns[a].get(k, 0) for k in TCP_KEYS}


tl = rows("timeline.jsonl")
lt = load("loadtest.json")
end_stats, ready_stats = rows("stats-end.json"), rows("stats-ready.json")
conns, gws, procs = num("conns"), num("gateways"), num("procs")
lt_exit = kv.get("loadtest_exit", "")
ramp_end = (lt or {}).get("ramp", {}).get("end", "")

# Why the run ended, first cause first.
if kv.get("interrupted"):
    ended = "interrupted"  # million.sh got SIGINT or SIGTERM
elif lt_exit == "124" or kv.get("deadline_passed"):
    ended = "deadline"
elif lt_exit not in ("", "0"):
    ended = "loadtest exit %s" % lt_exit + (" (killed: SIGKILL, e.g. the OOM killer)" if lt_exit == "137" else "")
elif lt is None:
    ended = "loadtest wrote no report"
elif ramp_end == "interrupted":
    ended = "interrupted"  # loadtest itself got the signal
elif not kv.get("t_ready"):
    ended = "not ready"
elif ramp_end and ramp_end != "complete":
    ended = "ramp " + ramp_end
else:
    ended = "ready"

peak = max(tl, key=lambda r: r.get("open", 0), default={})
last = tl[-1] if tl else {}


def closes(rs):
    out = {}
    for d in rs:
        for k, v in d.get("closes", {}).items():
            out[k] = out.get(k, 0) + v
    return out


c_end = closes(end_stats) or last.get("closes", {})
open_end = sum(d.get("ws_conns", 0) for d in end_stats) if end_stats else last.get("open", 0)
rescues = sum(d.get("liveness_rescues", 0) for d in end_stats) if end_stats else last.get("liveness_rescues", 0)
hs_timeouts = c_end.get("handshake_timeout", 0)
lag_max = max([r.get("loop_lag_max_s", 0) for r in tl] + [d.get("loop_lag_max", 0) / 1e9 for d in end_stats], default=0)
stalls = max([r.get("loop_stalls", 0) for r in tl] + [sum(d.get("loop_stalls", 0) for d in end_stats)], default=0)
rss0, slab0 = num("rss0") * 1024, num("slab0") * 1024

# Where the CPU went: the whole run's /proc/stat split, and CPU seconds per
# group (the last row is cumulative), with the busiest other processes.
cpu = last.get("cpu_s", {})
split = {}
if tl:
    st = load("state.json") or {}
    s0, s1 = st.get("stat0"), st.get("stat")
    if s0 and s1:
        d = {k: s1[k] - s0[k] for k in s0}
        tot = sum(d.values()) or 1
        split = {k: round(100 * v / tot, 1) for k, v in d.items()}
# Other processes by name, with how many: another user's wsgate or
# loadtest processes on the machine show here, apart from the run's own.
others, count = {}, {}
for g, comm, c0, c in (load("state.json") or {}).get("pids", {}).values():
    if g == "other" and c > c0:
        others[comm] = others.get(comm, 0) + (c - c0)
        count[comm] = count.get(comm, 0) + 1
tck = os.sysconf("SC_CLK_TCK")
top_others = {"%s (%d)" % (k, count[k]): round(v / tck, 1) for k, v in sorted(others.items(), key=lambda kv: -kv[1])[:5]}

rep = {
    "conns": conns, "gateways": gws, "loadtest_procs": procs, "source_ips": num("sources"), "hold": kv.get("hold"),
    "timer_tick": kv.get("tick"), "ended": ended, "loadtest_exit": int(lt_exit) if lt_exit.isdigit() else None,
    "ramp_end": ramp_end or None, "seconds": num("elapsed"),
    "peak": {"t": peak.get("t"), "open": peak.get("open", 0), "gateway_rss_bytes": peak.get("gateway_rss_kb", 0) * 1024,
             "kernel_slab_growth_bytes": (peak.get("slab_kb", 0) * 1024 - slab0) if peak else 0,
             "loadtest_rss_bytes": peak.get("loadtest_rss_kb", 0) * 1024, "nats_rss_bytes": peak.get("nats_rss_kb", 0) * 1024},
    "open_at_end": open_end,
    "liveness_closes": c_end.get("liveness", 0), "liveness_rescues": rescues,
    "loop_lag_max_s": round(lag_max, 3), "loop_stalls": stalls, "handshake_timeouts": hs_timeouts,
    "gateway_closes_by_cause_at_end": c_end,
    "gateway_rss_bytes_before": rss0,
    "cpu": {"split_pct": split, "seconds": cpu, "top_other_processes_s": top_others},
    "nats": {k: max((r.get(k, 0) for r in tl), default=0) for k in ("nats_disconnects", "cluster_slow_consumer")}
            | {"cluster_nodes_min": min((r["cluster_nodes_min"] for r in tl if "cluster_nodes_min" in r), default=None)},
    "tcp_counters": {"ramp": ns_growth("start", "ready"), "whole_run": ns_growth("start", "end")},
    "timeline": tl,
    "loadtest": None, "cluster_push": "not run (no --nats)" if not kv.get("nats") else "not run (the hold was not reached)",
}
if peak:
    rep["peak"]["gateway_rss_per_conn"] = round((rep["peak"]["gateway_rss_bytes"] - rss0) / max(peak["open"], 1))
    rep["peak"]["kernel_slab_per_socket"] = round(rep["peak"]["kernel_slab_growth_bytes"] / max(2 * peak["open"], 1))
# The ready file says every child's ramp is over; only a complete ramp
# means every connection is up (after an interrupted one the readings two
# seconds later are of the close).
all_up = bool(kv.get("t_ready")) and ramp_end in ("complete", "")
rep["all_up_after_s"] = num("t_ready") if all_up else None
if all_up:
    per_gw = [d.get("ws_conns", 0) for d in ready_stats]
    rss1, slab1 = num("rss1") * 1024, num("slab1") * 1024
    rep["at_ready"] = {"gateway_ws_conns": sum(per_gw), "spread": [min(per_gw, default=0), max(per_gw, default=0)],
                       "gateway_rss_bytes": rss1, "kernel_slab_growth_bytes": slab1 - slab0}
if lt:
    c = lt["connections"]
    est = c["established"]
    rep["loadtest"] = {"established": est, "attempted": c["attempted"], "failed": c["failed"],
                       "closed_by_server": c["closed_by_server"], "open_max": c["open_max"], "ramp": lt["ramp"],
                       "connect_ms": lt["connect_ms"], "errors": lt["errors"], "close": lt.get("close"),
                       "client_rss_bytes": lt["client"]["rss_bytes"],
                       "handshake_timeouts": lt["errors"].get("handshake: timeout", 0) + lt["errors"].get("connect: timeout", 0),
                       "connect_timeouts": lt["errors"].get("connect: timeout", 0),
                       "retries": c.get("retries", 0), "never_up": c.get("never_up", c["failed"])}
    if "at_ready" in rep:
        a = rep["at_ready"]
        a["gateway_rss_per_conn"] = round((a["gateway_rss_bytes"] - rss0) / max(est, 1))
        a["kernel_slab_per_socket"] = round(a["kernel_slab_growth_bytes"] / max(2 * est, 1))
if kv.get("pushed"):
    p = load("push.json") or {"posted": 0}
    p["messages_received"] = (lt or {}).get("messages_received", 0)
    n = num("sample")
    p["arrived_at_each"] = p.get("accepted") == n and p.get("reached") == n and p["messages_received"] == n
    rep["cluster_push"] = p
if kv.get("out"):
    json.dump(rep, open(kv["out"], "w"), indent=2)

M = lambda b: "%.0f MiB" % (b / 2**20)
P = rep["peak"]
print()
print(f"million: {conns:,} connections asked, {gws} gateways x 1 loop, {procs} loadtest children, {rep['source_ips']} source addresses")
print(f"  ended: {ended} after {rep['seconds']} s (loadtest exit {lt_exit or '?'}" + (f", ramp {ramp_end}" if ramp_end else "") + ")"
      + (f"; all up after {kv['t_ready']} s" if all_up else "; the ramp did not finish"))
print(f"  peak: {P['open']:,} open at {P.get('t')} s; gateway RSS {M(P['gateway_rss_bytes'])} ({P.get('gateway_rss_per_conn', 0)} B per connection "
      f"over {M(rss0)} before), kernel slab +{M(P['kernel_slab_growth_bytes'])} ({P.get('kernel_slab_per_socket', 0)} B per socket), "
      f"loadtest RSS {M(P['loadtest_rss_bytes'])}, nats RSS {M(P['nats_rss_bytes'])}")
print(f"  at the end: {open_end:,} open; liveness closes {rep['liveness_closes']:,}, rescues {rescues:,}; loop lag max {rep['loop_lag_max_s']} s, "
      f"stalls {stalls}; handshake timeouts {hs_timeouts:,} (gateways)" + (f", {rep['loadtest']['handshake_timeouts']:,} (loadtest)" if lt else ""))
print(f"  gateway closes by cause: {({k: v for k, v in c_end.items() if v}) or 'none'}")
if "at_ready" in rep:
    a = rep["at_ready"]
    print(f"  at ready: {a['gateway_ws_conns']:,} on the gateways ({a['spread'][0]:,}-{a['spread'][1]:,} each); gateway RSS {M(a['gateway_rss_bytes'])}"
          + (f", {a['gateway_rss_per_conn']} B per connection; kernel slab {a['kernel_slab_per_socket']} B per socket" if lt else ""))
if split:
    print("  CPU (/proc/stat, whole run): " + ", ".join(f"{k} {v}%" for k, v in split.items() if k in ("user", "system", "softirq", "irq", "steal", "idle", "iowait")))
if cpu:
    print(f"  CPU seconds: gateways {cpu.get('gateway', 0)}, loadtest {cpu.get('loadtest', 0)}, nats-server {cpu.get('nats', 0)}, "
          f"this script {cpu.get('script', 0)}, other processes {cpu.get('other', 0)}, unattributed (irq/softirq) {cpu.get('unattributed', 0)}; "
          f"busy {cpu.get('busy', 0)} of {rep['seconds'] * os.cpu_count()} core-seconds")
    if top_others:
        print(f"  busiest other processes (name (how many): CPU s): {top_others}")
if lt:
    L = rep["loadtest"]
    r = L["ramp"]
    print(f"  loadtest: {L['established']:,} established of {L['attempted']:,} attempted, {L['failed']:,} attempts failed "
          f"({L['retries']:,} of them tried again), {L['never_up']:,} connections never came up, {L['closed_by_server']:,} closed by the server, open max {L['open_max']:,}")
    print(f"  ramp: {r['seconds']:.1f} s, {r['upgrades_per_sec']:.0f} upgrades/s achieved ({r['target_per_sec']}/s asked), ended {r['end']}")
    print(f"  connect ms: p50 {L['connect_ms']['p50']:.2f}  p99 {L['connect_ms']['p99']:.2f}  max {L['connect_ms']['max']:.2f}; loadtest client RSS {M(L['client_rss_bytes'])}")
    cl = L.get("close") or {}
    if cl.get("sent"):
        print(f"  our closes: {cl['sent']:,} sent, {cl['answered']:,} answered, {cl['unanswered']:,} unanswered; answer ms p99 {cl['answer_ms']['p99']:.0f}")
    print(f"  errors: {L['errors'] or 'none'}")
else:
    print("  loadtest: no report (it was killed or exited before writing one); the figures above are the gateways' and the machine's")
if kv.get("nats"):
    N = rep["nats"]
    print(f"  NATS: {N['nats_disconnects']:,} disconnections of the gateways, {N['cluster_slow_consumer']:,} messages dropped by full node queues; "
          f"fewest nodes a gateway knew: {N['cluster_nodes_min']} of {gws}")
for phase, g in rep["tcp_counters"].items():
    if g:
        print(f"  kernel TCP counters, growth over the {phase.replace('_', ' ')}: " + ", ".join(f"{k} {v:,}" for k, v in g.items() if v))
cp = rep["cluster_push"]
if isinstance(cp, dict):
    print(f"  cluster push: {cp.get('posted', 0)} users, {cp.get('accepted', 0)} answered 202, {cp.get('reached', 0)} connections reached, "
          f"{cp['messages_received']} messages received by loadtest; arrived at each: {cp['arrived_at_each']}"
          + (f"; missing {cp['missing_users']}" if cp.get("missing_users") else ""))
else:
    print(f"  cluster push: {cp}")
