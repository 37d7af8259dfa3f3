package main

import (
	"fmt"
	"io"
	"strings"
)

// The table: a row per server, a column per figure, each figure with its
// ratio to the best peer in its column.

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

func writeTable(w io.Writer, o *options, rs []*result) {
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
	// The best peer per column: wsgate is compared with the others.
	best := make([]float64, len(cols))
	for i, c := range cols {
		for _, r := range rs {
			v := c.get(r)
			if r.Server == "wsgate" || v <= 0 {
				continue
			}
			if best[i] == 0 || (c.lower && v < best[i]) || (!c.lower && v > best[i]) {
				best[i] = v
			}
		}
	}
	for _, r := range rs {
		fmt.Fprintf(w, "| %s |", r.Server)
		for i, c := range cols {
			v := c.get(r)
			if v <= 0 {
				fmt.Fprintf(w, " n/a |")
				continue
			}
			cell := fmt.Sprintf(c.format, v)
			if best[i] > 0 {
				cell += fmt.Sprintf(" (%.2fx)", v/best[i])
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are to the best peer in each column (gorilla, gws, nbio; lower is better except upgrades/s).")
	fmt.Fprintln(w, "Kernel slab is per socket: the slope over connections halved, since client and server sockets are both on this machine.")
	fmt.Fprintln(w, "Upgrades/s is client-bound where the server core use below is well under 100%; server CPU per upgrade is the server-side figure.")
	goals(w, rs, cols, best)
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
}

func floats(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// goals checks wsgate's figures against the project's targets.
func goals(w io.Writer, rs []*result, cols []column, best []float64) {
	var ws, nb *result
	for _, r := range rs {
		switch r.Server {
		case "wsgate":
			ws = r
		case "nbio":
			nb = r
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
	fmt.Fprintln(w, "Goals for wsgate:")
	if nb != nil && nb.BytesPerConn > 0 && ws.BytesPerConn > 0 {
		x := ws.BytesPerConn / nb.BytesPerConn
		fmt.Fprintf(w, "- bytes per idle connection <= 0.5x nbio's: %.2fx, %s\n", x, verdict(x <= 0.5))
	}
	for i, c := range cols {
		v := c.get(ws)
		if v <= 0 || best[i] <= 0 {
			continue
		}
		x := v / best[i]
		switch {
		case strings.HasPrefix(c.head, "server CPU µs / 1 KiB"):
			fmt.Fprintf(w, "- %s <= 0.6x the best peer's: %.2fx, %s\n", c.head, x, verdict(x <= 0.6))
		case strings.HasPrefix(c.head, "upgrades/s"):
			fmt.Fprintf(w, "- upgrades/s >= 2x the best peer's: %.2fx, %s (observed rate)\n", x, verdict(x >= 2))
		case strings.HasPrefix(c.head, "server CPU µs / upgrade"):
			fmt.Fprintf(w, "- upgrades per server core, from CPU per upgrade: %.2fx the best peer's, %s\n", 1/x, verdict(1/x >= 2))
		}
	}
	if ws.RateP99MS > 0 {
		fmt.Fprintf(w, "- rate p99 <= 2 ms: %.2f ms, %s\n", ws.RateP99MS, verdict(ws.RateP99MS <= 2))
	}
	fmt.Fprintln(w)
}
