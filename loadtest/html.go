//go:build linux

package main

import (
	"fmt"
	"html/template"
	"math"
	"os"
	"strings"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// The HTML report is one self-contained file: the charts are inline SVG
// drawn here, with no script and nothing fetched, so it opens on an offline
// machine.

const chartW, chartH, padL, padB, padT, padR = 760.0, 240.0, 64.0, 36.0, 14.0, 16.0

// logBuckets folds a histogram into ten buckets per decade: the x axis of
// a latency chart is logarithmic.
func logBuckets(h *hdrhistogram.Histogram) (edges []float64, counts []int64) {
	if h == nil || h.TotalCount() == 0 {
		return nil, nil
	}
	lo := math.Floor(math.Log10(float64(max(h.Min(), 1))) * 10)
	hi := math.Ceil(math.Log10(float64(max(h.Max(), 1))+1) * 10)
	for k := lo; k <= hi; k++ {
		edges = append(edges, math.Pow(10, k/10))
	}
	counts = make([]int64, len(edges))
	for _, b := range h.Distribution() {
		if b.Count == 0 {
			continue
		}
		i := int(math.Floor(math.Log10(float64(max(b.From, 1)))*10) - lo)
		counts[min(max(i, 0), len(counts)-1)] += b.Count
	}
	return edges, counts
}

// histSVG draws h as bars on a log axis, with the percentiles marked. unit
// divides the recorded values for the labels (1000 turns µs into ms).
func histSVG(h *hdrhistogram.Histogram, unit float64, label string) template.HTML {
	edges, counts := logBuckets(h)
	if len(edges) == 0 {
		return template.HTML(`<p class="none">no values recorded</p>`)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img">`, chartW, chartH, chartW, chartH)
	var peak int64
	for _, c := range counts {
		peak = max(peak, c)
	}
	lo, hi := math.Log10(edges[0]), math.Log10(edges[len(edges)-1]*math.Pow(10, 0.1))
	x := func(v float64) float64 {
		return padL + (math.Log10(math.Max(v, edges[0]))-lo)/(hi-lo)*(chartW-padL-padR)
	}
	y := func(c float64) float64 { return chartH - padB - c/float64(peak)*(chartH-padB-padT) }
	axes(&b)
	for i, c := range counts {
		if c == 0 {
			continue
		}
		x0, x1 := x(edges[i]), x(edges[i]*math.Pow(10, 0.1))
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#4a7fc1"><title>%s–%s %s: %d</title></rect>`,
			x0, y(float64(c)), math.Max(x1-x0-1, 1), chartH-padB-y(float64(c)),
			num(edges[i]/unit), num(edges[i]*math.Pow(10, 0.1)/unit), label, c)
	}
	for k := math.Ceil(lo); k <= hi; k++ {
		v := math.Pow(10, k)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s</text>`, x(v), chartH-padB+14, num(v/unit))
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="axis" text-anchor="middle">%s (log scale)</text>`, (chartW+padL)/2, chartH-4, label)
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="end">%d</text>`, padL-6, padT+8, peak)
	for i, p := range []struct {
		q    float64
		name string
	}{{50, "p50"}, {99, "p99"}, {99.9, "p99.9"}} {
		// Labels step down so close percentiles stay readable; past the
		// middle they go left of their line.
		v := float64(h.ValueAtQuantile(p.q))
		tx, anchor := x(v)+3, "start"
		if x(v) > chartW*0.6 {
			tx, anchor = x(v)-3, "end"
		}
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#c0392b" stroke-dasharray="3 3"/>`+
			`<text x="%.1f" y="%.1f" fill="#c0392b" class="tick" text-anchor="%s">%s %s</text>`,
			x(v), x(v), padT, chartH-padB, tx, padT+10+float64(i)*13, anchor, p.name, num(v/unit))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// seriesSVG draws one line per series over the timeline.
func seriesSVG(ts []float64, series []series) template.HTML {
	if len(ts) == 0 {
		return template.HTML(`<p class="none">no samples</p>`)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg viewBox="0 0 %.0f %.0f" width="%.0f" height="%.0f" role="img">`, chartW, chartH, chartW, chartH)
	axes(&b)
	tmax := math.Max(ts[len(ts)-1], 1)
	x := func(t float64) float64 { return padL + t/tmax*(chartW-padL-padR) }
	for i, s := range series {
		var peak float64
		for _, v := range s.v {
			peak = math.Max(peak, v)
		}
		peak = math.Max(peak, 1)
		var pts strings.Builder
		for j, v := range s.v {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(ts[j]), chartH-padB-v/peak*(chartH-padB-padT))
		}
		// Each series is scaled to its own peak; the legend says the range.
		fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke-width="1.6" stroke="%s"/>`, pts.String(), colors[i%len(colors)])
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="legend" fill="%s">%s (0–%s)</text>`,
			padL+8+float64(i)*300, padT+8, colors[i%len(colors)], s.name, num(peak))
	}
	for k := 0.0; k <= 4; k++ {
		t := tmax * k / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" class="tick" text-anchor="middle">%s s</text>`, x(t), chartH-padB+14, num(t))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

var colors = []string{"#4a7fc1", "#e67e22"}

type series struct {
	name string
	v    []float64
}

func axes(b *strings.Builder) {
	fmt.Fprintf(b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/><line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="#888"/>`,
		padL, chartH-padB, chartW-padR, chartH-padB, padL, padT, padL, chartH-padB)
}

func num(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.3gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.3gk", v/1e3)
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

var htmlTmpl = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>wsgate loadtest: {{.R.Scenario}}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:820px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse}td,th{padding:2px 12px 2px 0;text-align:left;vertical-align:top}
th{font-weight:600;color:#555}
.tick,.axis,.legend{font-size:11px}.tick,.axis{fill:#555}.none{color:#888}
</style></head><body>
<h1>wsgate loadtest: {{.R.Scenario}}</h1>
<table>
<tr><th>started</th><td>{{.R.Started}}</td></tr>
<tr><th>targets</th><td>{{range .R.Targets}}{{.}} {{end}}</td></tr>
<tr><th>load</th><td>{{.R.Config.Conns}} connections, {{.R.Procs}} process(es) × {{.R.LoopsPerProc}} loop(s), measured {{.R.SteadySec}} s</td></tr>
<tr><th>connections</th><td>attempted {{.R.Connections.Attempted}}, established {{.R.Connections.Established}}, failed {{.R.Connections.Failed}}, closed by server {{.R.Connections.ClosedByServer}}, open max {{.R.Connections.OpenMax}}</td></tr>
<tr><th>messages</th><td>sent {{.R.Sent}}, received {{.R.Received}}, {{printf "%.0f" .R.MsgsPerSec}} msg/s</td></tr>
<tr><th>latency µs</th><td>p50 {{.R.LatencyUS.P50}}, p90 {{.R.LatencyUS.P90}}, p99 {{.R.LatencyUS.P99}}, p99.9 {{.R.LatencyUS.P999}}, max {{.R.LatencyUS.Max}}</td></tr>
<tr><th>connect ms</th><td>p50 {{.R.ConnectMS.P50}}, p99 {{.R.ConnectMS.P99}}, max {{.R.ConnectMS.Max}}</td></tr>
{{with .R.Storm}}<tr><th>storm</th><td>{{.Mode}}: dropped {{.Dropped}}, recovered {{.Recovered}}, 99% back {{.Back99MS}} ms, peak {{.PeakAcceptPerSec}} accepts/s</td></tr>{{end}}
{{with .R.Slow}}<tr><th>slow</th><td>{{.Conns}} slow, closed by server {{.ClosedByServer}}, still open {{.OpenAtEnd}}; how: {{range $k, $v := .CloseCodes}}{{$k}}: {{$v}} {{end}}</td></tr>{{end}}
<tr><th>errors</th><td>{{if .R.Errors}}{{range $k, $v := .R.Errors}}{{$k}}: {{$v}}<br>{{end}}{{else}}none{{end}}</td></tr>
</table>
{{if .R.LatencyUS.Count}}<h2>Round-trip latency (µs){{if eq .R.Scenario "rate" "slow"}}, from the intended send time{{end}}</h2>
{{.Latency}}{{end}}
<h2>Connect time (ms, connect through 101)</h2>
{{.Connect}}
<h2>Over time</h2>
{{.Time}}
{{if .Accepts}}<h2>Accepts per second</h2>{{.Accepts}}{{end}}
</body></html>
`))

func writeHTML(path string, r *Report) error {
	// The run starts at zero: lines begin at the origin. A run of up to two
	// minutes is drawn from the 100 ms samples, so a storm's dip shows;
	// a longer one from the one-second timeline.
	ts, open, rate, acc := []float64{0}, []float64{0}, []float64{0}, []float64{0}
	if len(r.fine) > 0 && len(r.fine) <= 1200 {
		var prev sample
		per := float64(time.Second) / float64(sampleEvery)
		for _, s := range r.fine {
			ts = append(ts, float64(s.T+int64(sampleEvery))/1e9)
			open = append(open, float64(s.Open))
			rate = append(rate, float64(s.Received-prev.Received)*per)
			acc = append(acc, float64(s.Established-prev.Established)*per)
			prev = s
		}
	} else {
		for _, p := range r.Timeline {
			ts = append(ts, p.T)
			open = append(open, float64(p.Open))
			rate = append(rate, p.MsgsPerSec)
			acc = append(acc, p.Accepts)
		}
	}
	data := struct {
		R                               *Report
		Latency, Connect, Time, Accepts template.HTML
	}{
		R:       r,
		Latency: histSVG(r.hist[histLatency], 1, "µs"),
		Connect: histSVG(r.hist[histConnect], 1000, "ms"),
	}
	if r.Received > 0 {
		data.Time = seriesSVG(ts, []series{{"open connections", open}, {"messages/s received", rate}})
	} else {
		data.Time = seriesSVG(ts, []series{{"open connections", open}})
	}
	if r.Scenario == scStorm || r.Scenario == scConnect {
		data.Accepts = seriesSVG(ts, []series{{"upgrades completed per second", acc}})
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := htmlTmpl.Execute(f, data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
