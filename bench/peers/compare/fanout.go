package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Fan-out: the same broadcast scenario for every server. loadtest's fanout
// scenario opens the subscribers; connection 0 publishes at a fixed rate
// (open loop, each message stamped with its intended send time), and the
// server sends each message to every connection, the publisher included,
// with its own broadcast path: wsgate's --app broadcast, gws's
// Broadcaster, gorilla's PreparedMessage, nbio's WriteMessage per
// connection, and the floor's one write syscall per delivery. Server CPU
// over the measured phase divided by the deliveries that arrived in it is
// the cost of one delivery.

// defaultFanouts are issue 16's cases: a rate at which writes to one
// subscriber can coalesce (200 msg/s; on a fast core a server keeps up
// with one write per delivery there, so also 1,000 msg/s, where one write
// per delivery cannot keep up on one core), one at which each delivery
// is one write, and the most subscribers one server process holds.
const defaultFanouts = "1000x200x256,1000x1000x256,2000x25x1024,19000x5x1024"

type fanoutCase struct {
	Subs int `json:"subscribers"`
	Rate int `json:"rate"` // published messages per second
	Size int `json:"size"` // payload bytes
}

func (c fanoutCase) String() string { return fmt.Sprintf("%dx%dx%d", c.Subs, c.Rate, c.Size) }

func parseFanouts(s string) ([]fanoutCase, error) {
	var out []fanoutCase
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		p := strings.Split(f, "x")
		if len(p) != 3 {
			return nil, fmt.Errorf("%q: want SUBSCRIBERSxRATExSIZE", f)
		}
		var v [3]int
		for i := range p {
			n, err := strconv.Atoi(p[i])
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("%q: %q is not a positive number", f, p[i])
			}
			v[i] = n
		}
		if v[2] < 8 {
			return nil, fmt.Errorf("%q: payloads carry an 8-byte timestamp", f)
		}
		out = append(out, fanoutCase{Subs: v[0], Rate: v[1], Size: v[2]})
	}
	return out, nil
}

type fanoutResult struct {
	Case          fanoutCase `json:"case"`
	CPUPerDeliv   float64    `json:"cpu_us_per_delivery"`
	PerCoreSec    float64    `json:"deliveries_per_core_second"`
	DeliveriesSec float64    `json:"deliveries_per_sec"`
	ServerUtil    float64    `json:"server_core_util"`
	Published     int64      `json:"published"`
	Expected      int64      `json:"expected_deliveries"`
	Lost          int64      `json:"lost"`
	P99MS         float64    `json:"delivery_p99_ms"`
}

func (o *options) fanout(name string, fc fanoutCase) (*fanoutResult, error) {
	s, err := o.start(name, true)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	cs := sampleCPU(s.pid)
	rep, err := o.loadtest(s, nil, "fanout", "--conns", strconv.Itoa(fc.Subs), "--ramp", "5000",
		"--rate", strconv.Itoa(fc.Rate), "--size", strconv.Itoa(fc.Size), "--duration", o.duration.String())
	cs.end()
	if err != nil {
		return nil, err
	}
	if rep.Fanout == nil {
		return nil, fmt.Errorf("no fanout section in loadtest's report")
	}
	from, to := time.UnixMilli(rep.SteadyFrom), time.UnixMilli(rep.SteadyTo)
	cpu := cs.value(to) - cs.value(from)
	if rep.SteadyRecv <= 0 || cpu <= 0 {
		return nil, fmt.Errorf("no deliveries in the measured phase (%v)", rep.Errors)
	}
	fr := &fanoutResult{
		Case: fc, CPUPerDeliv: cpu * 1e6 / float64(rep.SteadyRecv), PerCoreSec: float64(rep.SteadyRecv) / cpu,
		DeliveriesSec: float64(rep.SteadyRecv) / to.Sub(from).Seconds(), ServerUtil: cpu / to.Sub(from).Seconds(),
		Published: rep.Fanout.Published, Expected: rep.Fanout.Expected, Lost: rep.Fanout.Lost,
		P99MS: float64(rep.LatencyUS.P99) / 1e3,
	}
	if int(rep.Fanout.Subscribers) != fc.Subs {
		return fr, fmt.Errorf("%d of %d subscribers connected (%v)", rep.Fanout.Subscribers, fc.Subs, rep.Errors)
	}
	return fr, nil
}

// writeFanoutTable prints one row per case and server.
func writeFanoutTable(w io.Writer, o *options, rs []*result) {
	if !o.only["fanout"] || len(o.fanouts) == 0 {
		return
	}
	fmt.Fprintln(w, "| fan-out: subscribers × msg/s × bytes | server | server CPU µs / delivery | deliveries / s per server core | deliveries / s | server core use | undelivered of expected | delivery p99 ms |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for i := range o.fanouts {
		want := o.fanouts[i]
		want.Subs = o.count(want.Subs)
		at := func(r *result) *fanoutResult {
			for j := range r.Fanout {
				if r.Fanout[j].Case == want {
					return &r.Fanout[j]
				}
			}
			return nil
		}
		us := func(r *result) float64 {
			if f := at(r); f != nil {
				return f.CPUPerDeliv
			}
			return 0
		}
		per := func(r *result) float64 {
			if f := at(r); f != nil {
				return f.PerCoreSec
			}
			return 0
		}
		usRef := refs(rs, us, true)
		perRef := refs(rs, per, false)
		for _, r := range rs {
			f := at(r)
			if f == nil {
				continue
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %.0f | %.2f | %d of %d | %.1f |\n", f.Case, r.Server,
				usRef.cell(r, "%.2f", f.CPUPerDeliv), perRef.cell(r, "%.0f", f.PerCoreSec), f.DeliveriesSec, f.ServerUtil,
				f.Lost, f.Expected, f.P99MS)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Every server sends each published message to every subscriber, the publisher included. Deliveries per core-second are deliveries in the measured phase over the server's CPU seconds in it; lost counts deliveries that had not arrived after a 3 s drain (a server behind its publisher is still queueing them, and drops them when the connections close).")
	fmt.Fprintln(w)
}
