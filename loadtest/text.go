//go:build linux

package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// writeText prints the final table.
func writeText(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	p("scenario\t%s\t%d conns, %d proc(s) x %d loop(s), measured %.1fs", r.Scenario, r.Config.Conns, r.Procs, r.LoopsPerProc, r.SteadySec)
	p("target\t%s", strings.Join(r.Targets, ", "))
	c := r.Connections
	p("connections\tattempted %d\testablished %d\tfailed %d\tclosed by server %d\topen max %d",
		c.Attempted, c.Established, c.Failed, c.ClosedByServer, c.OpenMax)
	if c.Retries > 0 || r.Config.Retries > 0 {
		p("retries\t%d failed attempts tried again (--retries %d)\t%d connections never came up", c.Retries, r.Config.Retries, c.NeverUp)
	}
	if c.PortRetries > 0 {
		p("port retries	%d	first dials whose own source port was taken at connect, dialled again with the kernel's", c.PortRetries)
	}
	if cl := r.Client; cl.Open > 0 {
		p("client memory\tRSS %.1f MiB\theap %.1f MiB\t%.0f B RSS per open conn\t%.0f B heap per open conn",
			float64(cl.RSSBytes)/(1<<20), float64(cl.HeapBytes)/(1<<20), cl.RSSPerConn, cl.HeapPerConn)
	}
	p("connect ms\tp50 %.2f\tp90 %.2f\tp99 %.2f\tp99.9 %.2f\tmax %.2f",
		r.ConnectMS.P50, r.ConnectMS.P90, r.ConnectMS.P99, r.ConnectMS.P999, r.ConnectMS.Max)
	if rp := r.Ramp; rp.End != "" {
		p("ramp\t%s\t%d upgrades in %.1fs\t%.0f/s achieved\t%d/s asked", rp.End, rp.Upgrades, rp.Seconds, rp.UpgradesPerSec, rp.TargetPerSec)
	}
	if r.Scenario != scConnect && r.Scenario != scStorm {
		p("messages\tsent %d\treceived %d\tlost in flight %d\t%.0f msg/s", r.Sent, r.Received, r.LostInFlight, r.MsgsPerSec)
		p("bytes\twire sent %d\treceived %d\tpayload sent %d\treceived %d\tcompression %v", r.BytesSent, r.BytesRecv, r.PayloadSent, r.PayloadRecv, r.Compression)
		l := r.LatencyUS
		p("latency us\tp50 %d\tp90 %d\tp99 %d\tp99.9 %d\tmax %d", l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	if f := r.Fanout; f != nil {
		p("fanout\t%d subscribers\tpublished %d\tdelivered %d of %d\tlost %d\t%.0f deliveries/s",
			f.Subscribers, f.Published, f.Delivered, f.Expected, f.Lost, f.DeliveriesPerSec)
	}
	if s := r.Storm; s != nil {
		back := func(v float64) string {
			if v < 0 {
				return "not reached"
			}
			return fmt.Sprintf("%.0f ms", v)
		}
		p("storm\tdropped %d\trecovered %d\t99%% back %s\tall back %s\tpeak %.0f accepts/s",
			s.Dropped, s.Recovered, back(s.Back99MS), back(s.BackAllMS), s.PeakAcceptPerSec)
	}
	if s := r.Slow; s != nil {
		p("slow conns\t%d\tclosed by server %d\tstill open at end %d\tsent %d\tskipped %d",
			s.Conns, s.ClosedByServer, s.OpenAtEnd, s.Sent, s.SkippedSends)
		p("slow closed\t%s", joinCounts(s.CloseCodes))
	}
	if cl := r.Close; cl.Sent > 0 {
		p("our closes\tsent %d\tanswered %d\tFIN only %d\tunanswered %d\tanswer ms p50 %.1f p99 %.1f max %.1f",
			cl.Sent, cl.Answered, cl.EOF, cl.Unanswered, cl.AnswerMS.P50, cl.AnswerMS.P99, cl.AnswerMS.Max)
	}
	if len(r.CloseCodes) > 0 {
		p("closed by server\t%s", joinCounts(r.CloseCodes))
	}
	p("errors\t%s", joinCounts(r.Errors))
	for _, n := range r.Notes {
		p("note\t%s", n)
	}
	tw.Flush()
}

func joinCounts(m map[string]int64) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: %d", k, m[k])
	}
	return b.String()
}

// progressLine is the live status, one line.
func progressLine(scenario string, phase int32, now int64, c [nCounters]int64, total int) string {
	return fmt.Sprintf("%-7s %6.1fs %-6s open %d/%d  up %d  failed %d  sent %d  recv %d  errors %d",
		scenario, float64(now)/1e9, phaseNames[phase], c[cOpen], total, c[cEstablished], c[cFailed],
		c[cSent]+c[cSlowSent], c[cReceived], c[cErrors])
}
