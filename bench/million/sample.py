#!/usr/bin/env python3
"""bench/million/sample.py: one poll of bench/million.sh's run.

    sample.py STATE TIMELINE T STATS GW_PIDS NATS_PID LT_PID SCRIPT_PID

Appends one JSON row to TIMELINE (gateway stats summed over STATS, one JSON
object per gateway a line; the gateways' RSS; kernel slab; the /proc/stat
split since the last poll; CPU seconds per process group since the run
began) and prints "open liveness" for the progress line. STATE keeps what
the next poll needs: the last /proc/stat counters and every process seen,
with its group and its CPU at first sight, so that a process that has
exited (an OOM-killed loadtest child) keeps the CPU it used.

Groups: gateway (GW_PIDS, comma-separated), nats (NATS_PID), loadtest
(LT_PID and its descendants: timeout, the parent, the children), script
(SCRIPT_PID's other descendants: curl, python) and other (everything
else, the machine's own agents and kernel threads included). What
/proc/stat counts busy beyond the processes' utime+stime is "unattributed"
(interrupt and softirq time the kernel charges to no task).

With T = init it only records the starting point (before anything starts).
It must never fail the run: any error leaves a row with what it could read.
"""
import json, os, sys

TCK = os.sysconf("SC_CLK_TCK")
STAT_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def proc_stat():
    with open("/proc/stat") as f:
        parts = f.readline().split()
    return {k: int(v) for k, v in zip(STAT_FIELDS, parts[1:9])}


def procs():
    """pid -> (ppid, comm, utime+stime in ticks, rss pages)"""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rindex(")") + 2:].split()
        # rest[0] is field 3 (state): ppid 4, utime 14, stime 15, rss 24.
        out[int(d)] = (int(rest[1]), comm, int(rest[11]) + int(rest[12]), int(rest[21]))
    return out


def slab_kb():
    try:
        s = 0
        with open("/proc/slabinfo") as f:
            for i, line in enumerate(f):
                p = line.split()
                if i < 2 or p[0].startswith(("tw_sock", "request_sock")):
                    continue
                s += int(p[1]) * int(p[3])
        return s // 1024
    except OSError:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("Slab:"):
                    return int(line.split()[1])
    return 0


def group_of(pid, ps, gws, nats, lt, script):
    if pid in gws:
        return "gateway"
    if pid == nats:
        return "nats"
    seen = 0
    p = pid
    while p > 1 and seen < 64:
        if p == lt:
            return "loadtest"
        if p == script:
            return "script"
        p = ps.get(p, (0,))[0]
        seen += 1
    return "other"


def main():
    state_f, timeline_f, t = sys.argv[1:4]
    stats_f, gw_s, nats_s, lt_s, script_s = (sys.argv[4:9] + [""] * 5)[:5]
    gws = {int(x) for x in gw_s.split(",") if x}
    nats, lt, script = (int(x) if x else -1 for x in (nats_s, lt_s, script_s))
    ps = procs()
    ps.pop(os.getpid(), None)
    st = proc_stat()
    if t == "init":
        # Every process alive now starts at its current CPU; one seen
        # later started after this point, at zero.
        state = {"stat0": st, "stat": st, "pids": {str(p): ["other", v[1], v[2], v[2]] for p, v in ps.items()}}
        json.dump(state, open(state_f, "w"))
        return
    state = json.load(open(state_f))
    pids = state["pids"]
    for p, (_, comm, cpu, _) in ps.items():
        k = str(p)
        g = group_of(p, ps, gws, nats, lt, script)
        if k not in pids:
            pids[k] = [g, comm, 0, cpu]
        else:
            if pids[k][0] == "other" and g != "other":
                pids[k][0] = g  # started before it was known (a gateway's pid at init)
            pids[k][3] = max(pids[k][3], cpu)
    prev = state["stat"]
    d = {k: st[k] - prev[k] for k in STAT_FIELDS}
    tot = sum(d.values()) or 1
    split = {k: round(100 * d[k] / tot, 1) for k in ("user", "nice", "system", "irq", "softirq", "steal", "idle", "iowait")}
    state["stat"] = st
    json.dump(state, open(state_f, "w"))

    cpu = {"gateway": 0, "loadtest": 0, "nats": 0, "script": 0, "other": 0}
    for g, _, c0, c in pids.values():
        cpu[g] += c - c0
    s0 = state["stat0"]
    busy = sum(st[k] - s0[k] for k in STAT_FIELDS if k not in ("idle", "iowait"))
    cpu_s = {g: round(v / TCK, 1) for g, v in cpu.items()}
    cpu_s["unattributed"] = round((busy - sum(cpu.values())) / TCK, 1)
    cpu_s["busy"] = round(busy / TCK, 1)

    row = {"t": int(t), "open": 0, "liveness_closes": 0, "liveness_rescues": 0, "loop_lag_max_s": 0.0, "loop_stalls": 0,
           "handshake_timeouts": 0, "gateways_answering": 0, "closes": {}}
    try:
        for line in open(stats_f):
            line = line.strip()
            if not line:
                continue
            g = json.loads(line)
            if not g:
                continue
            row["gateways_answering"] += 1
            row["open"] += g.get("ws_conns", 0)
            c = g.get("closes", {})
            row["liveness_closes"] += c.get("liveness", 0)
            row["handshake_timeouts"] += c.get("handshake_timeout", 0)
            row["liveness_rescues"] += g.get("liveness_rescues", 0)
            row["pings_sent"] = row.get("pings_sent", 0) + g.get("pings_sent", 0)
            row["loop_stalls"] += g.get("loop_stalls", 0)
            row["loop_lag_max_s"] = max(row["loop_lag_max_s"], round(g.get("loop_lag_max", 0) / 1e9, 3))
            for k, v in c.items():
                row["closes"][k] = row["closes"].get(k, 0) + v
            cl = g.get("cluster") or {}
            if cl:
                # NATS: disconnections, nodes each gateway knows (the
                # fewest), messages its full queue dropped, interest not
                # yet applied.
                row["nats_disconnects"] = row.get("nats_disconnects", 0) + cl.get("disconnects", 0)
                row["cluster_nodes_min"] = min(row.get("cluster_nodes_min", 1 << 30), cl.get("nodes", 0))
                row["cluster_slow_consumer"] = row.get("cluster_slow_consumer", 0) + cl.get("slow_consumer", 0)
                row["cluster_pending"] = row.get("cluster_pending", 0) + cl.get("pending", 0)
    except (OSError, ValueError):
        pass
    page_kb = os.sysconf("SC_PAGE_SIZE") // 1024
    row["gateway_rss_kb"] = sum(ps[p][3] * page_kb for p in gws if p in ps)
    row["loadtest_rss_kb"] = sum(v[3] * page_kb for p, v in ps.items() if pids.get(str(p), ["?"])[0] == "loadtest")
    row["nats_rss_kb"] = ps[nats][3] * page_kb if nats in ps else 0
    row["slab_kb"] = slab_kb()
    row["cpu_split_pct"] = split
    row["cpu_s"] = cpu_s
    with open(timeline_f, "a") as f:
        f.write(json.dumps(row) + "\n")
    print(row["open"], row["liveness_closes"])


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a poll must not end the run
        print("million: sample: %s" % e, file=sys.stderr)
        print(0, 0)
