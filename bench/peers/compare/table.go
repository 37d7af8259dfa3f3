package main

import (
	"fmt"
	"io"
	"strings"
)

// The tables: a row per server, a column per figure, each figure with its
// ratio to the floor (the raw-epoll server) and to the best peer (gorilla,
// gws, nbio) in its column.

type column struct {
	head   string
	lower  bool // lower is better
	format string
	get    func(*result) float64
}

func (o *options) columns() []column {
	at := func(i int) func(*result) float64 {
		return func(r *result) float64 {
			if i < len(r.CPUPerEcho) {
				return r.CPUPerEcho[i]
			}
			return 0
		}
	}
	return []column{
		{"user-space B / idle conn (RSS slope)", true, "%.0f", func(r *result) float64 { return r.BytesPerConn }},
		{"kernel slab B / socket", true, "%.0f", func(r *result) float64 { return r.SlabPerSocket }},
		{fmt.Sprintf("server CPU µs / 1 KiB echo @%d", o.count(1000)), true, "%.1f", at(0)},
		{fmt.Sprintf("server CPU µs / 1 KiB echo @%d", o.count(10000)), true, "%.1f", at(1)},
		{"upgrades/s, server on 1 core", false, "%.0f", func(r *result) float64 { return r.UpgradesPerSec }},
		{"server CPU µs / upgrade", true, "%.1f", func(r *result) float64 { return r.CPUPerUpgrade }},
		{fmt.Sprintf("rate p99 ms @5k msg/s, %d conns", o.count(19000)), true, "%.2f", func(r *result) float64 { return r.RateP99MS }},
	}
}

// isPeer reports whether a server counts as a peer: not wsgate, the
// subject, not the floor, which no real server can beat, and not bare
// gnet, a baseline for goal 3 that is no WebSocket server.
func isPeer(name string) bool { return !isWsgate(name) && name != "floor" && name != "gnet" }

// isWsgate reports whether name is a wsgate build: "wsgate", or another
// build beside it for a before/after run in one table ("wsgate-base", a
// binary the caller put in --bin).
func isWsgate(name string) bool { return strings.HasPrefix(name, "wsgate") }

// ref holds a column's two references.
type ref struct {
	floor, peer float64
}

// refs finds the floor's value and the best peer's in a column.
func refs(rs []*result, get func(*result) float64, lower bool) ref {
	var x ref
	for _, r := range rs {
		v := get(r)
		if v <= 0 {
			continue
		}
		switch {
		case r.Server == "floor":
			x.floor = v
		case isPeer(r.Server):
			if x.peer == 0 || (lower && v < x.peer) || (!lower && v > x.peer) {
				x.peer = v
			}
		}
	}
	return x
}

// cell formats v with its ratios: "9.1 (1.15x floor, 0.95x peer)".
func (x ref) cell(r *result, format string, v float64) string {
	if v <= 0 {
		return "n/a"
	}
	var rs []string
	if x.floor > 0 && r.Server != "floor" {
		rs = append(rs, fmt.Sprintf("%.2fx floor", v/x.floor))
	}
	if x.peer > 0 {
		rs = append(rs, fmt.Sprintf("%.2fx peer", v/x.peer))
	}
	if len(rs) == 0 {
		return fmt.Sprintf(format, v)
	}
	return fmt.Sprintf(format, v) + " (" + strings.Join(rs, ", ") + ")"
}

func writeTable(w io.Writer, o *options, rs []*result) {
	if !o.only["idle"] && !o.only["cpu"] && !o.only["upgrade"] && !o.only["rate"] {
		return
	}
	cols := o.columns()
	fmt.Fprintf(w, "| server |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.head)
	}
	fmt.Fprintf(w, "\n|---|")
	for range cols {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	xs := make([]ref, len(cols))
	for i, c := range cols {
		xs[i] = refs(rs, c.get, c.lower)
	}
	for _, r := range rs {
		fmt.Fprintf(w, "| %s |", r.Server)
		for i, c := range cols {
			fmt.Fprintf(w, " %s |", xs[i].cell(r, c.format, c.get(r)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are to the floor (a raw-epoll server: one read and one write per message, nothing else) and to the best peer in each column (gorilla, gws, nbio); lower is better except upgrades/s.")
	fmt.Fprintln(w, "Kernel slab is per socket: the slope over connections halved, since client and server sockets are both on this machine.")
	fmt.Fprintln(w, "Upgrades/s is client-bound where the server core use below is well under 100%; server CPU per upgrade is the server-side figure.")
	fmt.Fprintln(w)
	for _, r := range rs {
		if len(r.EchoMsgsPerSec)+len(r.IdleRSS) > 0 || r.UpgradesPerSec > 0 || r.RateConns > 0 {
			fmt.Fprintf(w, "- %s: echo throughput %s msg/s, server core use %s; upgrades: %.1f µs CPU each, server core use %.0f%%; rate p99.9 %.2f ms, %d errors; idle RSS %s at %v conns\n",
				r.Server, floats(r.EchoMsgsPerSec, "%.0f"), floats(r.EchoServerUtil, "%.2f"), r.CPUPerUpgrade, 100*r.UpgradeUtil,
				r.RateP999MS, r.RateErrors, floats(r.IdleRSS, "%.0f"), r.IdleConns)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s: %s\n", r.Server, n)
		}
	}
	fmt.Fprintln(w)
}

func floats(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// goals checks wsgate's figures against issue 16's targets.
func goals(w io.Writer, o *options, rs []*result) {
	var ws, nb, bare *result
	for _, r := range rs {
		switch r.Server {
		case "wsgate":
			ws = r
		case "nbio":
			nb = r
		case "gnet":
			bare = r
		}
	}
	if ws == nil {
		return
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintln(w, "Goals for wsgate (issue 16):")
	cols := o.columns()
	for i, c := range cols {
		v := c.get(ws)
		x := refs(rs, c.get, c.lower)
		if v <= 0 {
			continue
		}
		switch {
		case strings.HasPrefix(c.head, "server CPU µs / 1 KiB"):
			if x.floor > 0 {
				fmt.Fprintf(w, "- %s <= 1.10x the floor: %.2fx, %s\n", c.head, v/x.floor, verdict(v/x.floor <= 1.10))
			}
			if x.peer > 0 {
				fmt.Fprintf(w, "- %s <= 0.85x the best peer: %.2fx, %s\n", c.head, v/x.peer, verdict(v/x.peer <= 0.85))
			}
		case strings.HasPrefix(c.head, "server CPU µs / upgrade") && x.peer > 0:
			fmt.Fprintf(w, "- server CPU per upgrade <= 0.5x the best peer: %.2fx, %s\n", v/x.peer, verdict(v/x.peer <= 0.5))
		case i == 0:
			if nb != nil && nb.BytesPerConn > 0 {
				fmt.Fprintf(w, "- bytes per idle connection <= 0.6x nbio's: %.2fx, %s\n",
					v/nb.BytesPerConn, verdict(v/nb.BytesPerConn <= 0.6))
			}
			if bare != nil && bare.BytesPerConn > 0 {
				fmt.Fprintf(w, "- bytes per idle connection <= bare gnet + 128 B: gnet + %.0f B, %s\n",
					v-bare.BytesPerConn, verdict(v-bare.BytesPerConn <= 128))
			} else {
				fmt.Fprintln(w, "- bytes per idle connection <= bare gnet + 128 B: not measured (add gnet to --servers)")
			}
		}
	}
	if ws.RateP99MS > 0 {
		fmt.Fprintf(w, "- open-loop p99 kept: %.2f ms (the best peer's %.2f ms)\n", ws.RateP99MS, refs(rs, cols[len(cols)-1].get, true).peer)
	}
	for _, f := range ws.Fanout {
		fc := f.Case
		us := refs(rs, fanoutGet(fc, func(f *fanoutResult) float64 { return f.CPUPerDeliv }), true)
		per := refs(rs, fanoutGet(fc, func(f *fanoutResult) float64 { return f.PerCoreSec }), false)
		if us.floor > 0 {
			fmt.Fprintf(w, "- fan-out %s: CPU per delivery %.2fx the floor (goal <= 1.10x where each delivery is one write), ", fc, f.CPUPerDeliv/us.floor)
		} else {
			fmt.Fprintf(w, "- fan-out %s: ", fc)
		}
		if per.peer > 0 {
			fmt.Fprintf(w, "deliveries per core %.2fx the best peer (goal >= 1.5x where writes coalesce)", f.PerCoreSec/per.peer)
		}
		fmt.Fprintf(w, "; lost %d\n", f.Lost)
	}
	fmt.Fprintln(w)
}

// fanoutGet reads one figure of case fc from a server's results.
func fanoutGet(fc fanoutCase, get func(*fanoutResult) float64) func(*result) float64 {
	return func(r *result) float64 {
		for i := range r.Fanout {
			if r.Fanout[i].Case == fc {
				return get(&r.Fanout[i])
			}
		}
		return 0
	}
}
