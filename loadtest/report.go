//go:build linux

package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Report is the result of a run, as written by --json. Field names are a
// contract: scripts read them.
type Report struct {
	Scenario     string            `json:"scenario"`
	Targets      []string          `json:"targets"`
	Started      time.Time         `json:"started"`
	Procs        int               `json:"procs"`
	LoopsPerProc int               `json:"loops_per_proc"`
	Config       reportConfig      `json:"config"`
	SteadySec    float64           `json:"steady_s"`
	SteadyFromMS int64             `json:"steady_start_unix_ms"` // the measured phase, wall clock:
	SteadyToMS   int64             `json:"steady_end_unix_ms"`   // for sampling the server beside it
	Ramp         rampReport        `json:"ramp"`
	Connections  connReport        `json:"connections"`
	Sent         int64             `json:"messages_sent"`
	Received     int64             `json:"messages_received"`
	SteadyRecv   int64             `json:"received_in_steady"` // within the measured phase: for figures per second of it
	LostInFlight int64             `json:"messages_lost_in_flight"`
	BytesSent    int64             `json:"bytes_sent"`
	BytesRecv    int64             `json:"bytes_received"`
	PayloadSent  int64             `json:"payload_sent"`     // data payload bytes before compression
	PayloadRecv  int64             `json:"payload_received"` // and inflated: beside the wire bytes, what --compression saved
	Compression  bool              `json:"compression"`
	Errors       map[string]int64  `json:"errors"`
	CloseCodes   map[string]int64  `json:"close_codes"`
	MsgsPerSec   float64           `json:"msgs_per_sec"`
	LatencyUS    latencyReport     `json:"latency_us"`
	ConnectMS    connectReport     `json:"connect_ms"`
	Client       clientReport      `json:"client"`
	Close        closeReport       `json:"close"`
	Fanout       *fanoutReport     `json:"fanout,omitempty"`
	Storm        *stormReport      `json:"storm,omitempty"`
	Slow         *slowReport       `json:"slow,omitempty"`
	Resume       *resumeReport     `json:"resume,omitempty"`
	Timeline     []point           `json:"timeline"`
	Histograms   map[string]string `json:"histograms"`
	Notes        []string          `json:"notes,omitempty"`

	hist map[string]*hdrhistogram.Histogram
	fine []sample // the merged 100 ms samples, for the HTML charts
}

type reportConfig struct {
	Conns     int     `json:"conns"`
	DurationS float64 `json:"duration_s"`
	Ramp      int     `json:"ramp"`
	Size      int     `json:"size"`
	Rate      int     `json:"rate,omitempty"`
	Inflight  int     `json:"inflight,omitempty"`
	SourceIPs int     `json:"source_ips"`
	SlowShare float64 `json:"slow_share,omitempty"`
	StormMode string  `json:"storm_mode,omitempty"`
	Retries   int     `json:"retries,omitempty"`
}

// rampReport times the ramp exactly, from the first attempt to the last
// upgrade completed during it: with a --ramp faster than the server, the
// upgrade rate the server sustains. TargetPerSec is what --ramp asked for;
// End says why the ramp ended (complete, stalled, timeout, interrupted:
// the worst over the processes).
type rampReport struct {
	StartUnixUS    int64   `json:"start_unix_us"`
	EndUnixUS      int64   `json:"end_unix_us"`
	Seconds        float64 `json:"seconds"`
	Upgrades       int64   `json:"upgrades"`
	UpgradesPerSec float64 `json:"upgrades_per_sec"`
	TargetPerSec   int     `json:"target_per_sec"`
	End            string  `json:"end"`
}

// closeReport is the closing handshake at the end of the run: close
// frames sent, answered with the server's close frame, followed only by
// its FIN, or not answered in the wait (kept apart from errors: a server
// slow to answer a mass close is not a broken one). AnswerMS is the time
// from our close frame to the server's.
type closeReport struct {
	Sent       int64         `json:"sent"`
	Answered   int64         `json:"answered"`
	EOF        int64         `json:"eof_without_frame"`
	Unanswered int64         `json:"unanswered"`
	AnswerMS   connectReport `json:"answer_ms"`
}

// fanoutReport is the broadcast run: connection 0 published Published
// messages, the server was to send each to every one of Subscribers
// connections (the publisher included), and Delivered of those arrived.
// Lost is Expected minus Delivered: it must be 0.
type fanoutReport struct {
	Subscribers      int64   `json:"subscribers"`
	Published        int64   `json:"published"`
	Expected         int64   `json:"expected_deliveries"`
	Delivered        int64   `json:"delivered"`
	Lost             int64   `json:"lost"`
	DeliveriesPerSec float64 `json:"deliveries_per_sec"`
}

type connReport struct {
	Attempted      int64 `json:"attempted"`
	Established    int64 `json:"established"`
	Failed         int64 `json:"failed"`
	ClosedByServer int64 `json:"closed_by_server"`
	OpenMax        int64 `json:"open_max"`
	// PortRetries counts first dials whose own source port (bindSource)
	// met a taken 4-tuple at connect and went again with the kernel's.
	PortRetries int64 `json:"port_retries,omitempty"`
	// Retries counts failed ramp attempts tried again (--retries);
	// NeverUp the connections that never came up: their last attempt
	// failed with no retry left, or their retry was still waiting when
	// the ramp ended.
	Retries int64 `json:"retries"`
	NeverUp int64 `json:"never_up"`
}

type latencyReport struct {
	Count int64   `json:"count"`
	P50   int64   `json:"p50"`
	P90   int64   `json:"p90"`
	P99   int64   `json:"p99"`
	P999  int64   `json:"p999"`
	Max   int64   `json:"max"`
	Mean  float64 `json:"mean"`
}

type connectReport struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// clientReport is the load generator's own memory at the end of the
// measured phase, all processes: what holding the connections costs the
// client. Per connection it includes the fixed footprint (read buffers,
// histograms), so it falls as connections rise.
type clientReport struct {
	RSSBytes    int64   `json:"rss_bytes"`
	HeapBytes   int64   `json:"heap_inuse_bytes"`
	Open        int64   `json:"open"`
	RSSPerConn  float64 `json:"rss_per_open_conn"`
	HeapPerConn float64 `json:"heap_per_open_conn"`
}

type stormReport struct {
	Mode              string  `json:"mode"`
	Dropped           int64   `json:"dropped"`
	Recovered         int64   `json:"recovered"`
	Back99MS          float64 `json:"back_99_ms"` // -1 when fewer than 99% came back
	BackAllMS         float64 `json:"back_all_ms"`
	PeakAcceptPerSec  float64 `json:"peak_accept_per_sec"`
	ReconnectAttempts int64   `json:"reconnect_attempts"`
}

type slowReport struct {
	Conns          int64            `json:"conns"`
	ClosedByServer int64            `json:"closed_by_server"`
	OpenAtEnd      int64            `json:"open_at_end"`
	CloseCodes     map[string]int64 `json:"close_codes"`
	Sent           int64            `json:"messages_sent"`
	SkippedSends   int64            `json:"sends_skipped_would_block"`
	FoundAtClose   int64            `json:"messages_found_at_close"`
}

// point is one second of the timeline.
type point struct {
	T          float64 `json:"t_s"`
	Open       int64   `json:"open"`
	Accepts    float64 `json:"accepts_per_sec"`
	MsgsPerSec float64 `json:"msgs_per_sec"`
	Errors     int64   `json:"errors"`
}

// finalize merges raw results of one or more processes into a report. t0 is
// the wall-clock start all samples are aligned to.
func finalize(cfg *config, raws []*raw, t0 time.Time) (*Report, error) {
	r := &Report{
		Scenario: cfg.scenario, Started: t0.UTC().Truncate(time.Millisecond), Procs: len(raws),
		Errors: map[string]int64{}, CloseCodes: map[string]int64{}, Compression: cfg.compression,
		Config: reportConfig{
			Conns: cfg.conns, DurationS: cfg.duration.Seconds(), Ramp: cfg.ramp, Size: cfg.size,
			SourceIPs: len(cfg.sourceIPs), Retries: cfg.retries,
		},
	}
	for _, t := range cfg.targets {
		r.Targets = append(r.Targets, t.url)
	}
	switch cfg.scenario {
	case scEcho:
		r.Config.Inflight = cfg.inflight
	case scRate, scFanout:
		r.Config.Rate = cfg.rate
	case scSlow:
		r.Config.Rate, r.Config.SlowShare = cfg.rate, cfg.slowShare
	case scStorm:
		r.Config.StormMode = cfg.stormMode
	}
	counts := map[string]int64{}
	slowCodes := map[string]int64{}
	hs := map[string]*hdrhistogram.Histogram{
		histLatency: newHist(histLatency), histConnect: newHist(histConnect), histRecovery: newHist(histRecovery),
		histClose: newHist(histClose),
	}
	var steady float64
	var steadyOpen int64
	r.Ramp.TargetPerSec = cfg.ramp
	for _, x := range raws {
		if x.RampFirstNs > 0 {
			from, to := (x.EpochUnixNs+x.RampFirstNs)/1e3, (x.EpochUnixNs+x.RampLastNs)/1e3
			if r.Ramp.StartUnixUS == 0 || from < r.Ramp.StartUnixUS {
				r.Ramp.StartUnixUS = from
			}
			r.Ramp.EndUnixUS = max(r.Ramp.EndUnixUS, to)
			r.Ramp.Upgrades += x.RampUpgrades
		}
		if rampRank[x.RampEnd] >= rampRank[r.Ramp.End] {
			r.Ramp.End = x.RampEnd
		}
		steadyOpen += x.SteadyOpen
		r.SteadyRecv += x.SteadyRecv
		r.LoopsPerProc = max(r.LoopsPerProc, x.Loops)
		r.Client.RSSBytes += x.ClientRSS
		r.Client.HeapBytes += x.ClientHeap
		r.Client.Open += x.ClientOpen
		addMap(counts, x.Counts)
		addMap(r.Errors, x.Errors)
		addMap(r.CloseCodes, x.CloseCodes)
		addMap(slowCodes, x.SlowCodes)
		for k, b := range x.Hist {
			h, err := hdrhistogram.Decode([]byte(b))
			if err != nil {
				return nil, fmt.Errorf("loadtest: histogram %s: %v", k, err)
			}
			if dst := hs[k]; dst != nil {
				dst.Merge(h)
			}
		}
		if x.SteadyEndNs > x.SteadyStartNs {
			steady += float64(x.SteadyEndNs-x.SteadyStartNs) / 1e9
			from, to := (x.EpochUnixNs+x.SteadyStartNs)/1e6, (x.EpochUnixNs+x.SteadyEndNs)/1e6
			if r.SteadyFromMS == 0 || from < r.SteadyFromMS {
				r.SteadyFromMS = from
			}
			r.SteadyToMS = max(r.SteadyToMS, to)
		}
	}
	if len(raws) > 0 {
		r.SteadySec = round3(steady / float64(len(raws)))
	}
	if r.Client.Open > 0 {
		r.Client.RSSPerConn = round3(float64(r.Client.RSSBytes) / float64(r.Client.Open))
		r.Client.HeapPerConn = round3(float64(r.Client.HeapBytes) / float64(r.Client.Open))
	}
	if d := r.Ramp.EndUnixUS - r.Ramp.StartUnixUS; d > 0 {
		r.Ramp.Seconds = round3(float64(d) / 1e6)
		r.Ramp.UpgradesPerSec = round3(float64(r.Ramp.Upgrades) / (float64(d) / 1e6))
	}
	r.hist = hs
	r.Histograms = encodeHists(hs)
	r.Connections = connReport{
		Attempted: counts["attempted"], Established: counts["established"], Failed: counts["failed"],
		ClosedByServer: counts["closed_by_server"], PortRetries: counts["port_retries"],
		Retries: counts["retries"], NeverUp: counts["failed"] - counts["retries"] + counts["retry_wait"],
	}
	r.Sent, r.Received, r.LostInFlight = counts["sent"], counts["received"], counts["lost_in_flight"]
	r.BytesSent, r.BytesRecv = counts["bytes_sent"], counts["bytes_received"]
	r.PayloadSent, r.PayloadRecv = counts["payload_sent"], counts["payload_received"]
	if r.SteadySec > 0 {
		r.MsgsPerSec = round3(float64(r.Received) / r.SteadySec)
	}
	r.LatencyUS = latencyOf(hs[histLatency])
	r.ConnectMS = connectOf(hs[histConnect])
	r.Close = closeReport{
		Sent: counts["close_sent"], Answered: counts["close_answered"], EOF: counts["close_eof"],
		Unanswered: counts["close_unanswered"], AnswerMS: connectOf(hs[histClose]),
	}
	if cfg.scenario == scFanout {
		f := &fanoutReport{Subscribers: steadyOpen, Published: r.Sent, Delivered: r.Received}
		f.Expected = f.Published * f.Subscribers
		f.Lost = f.Expected - f.Delivered
		if r.SteadySec > 0 {
			f.DeliveriesPerSec = round3(float64(f.Delivered) / r.SteadySec)
		}
		r.Fanout = f
	}

	merged := mergeSamples(raws, t0)
	for _, s := range merged {
		r.Connections.OpenMax = max(r.Connections.OpenMax, s.Open)
	}
	r.Timeline = timeline(merged)
	r.fine = merged
	if cfg.scenario == scStorm {
		from := len(merged)
		for _, x := range raws {
			if x.StormStartNs > 0 {
				from = min(from, int((x.EpochUnixNs+x.StormStartNs-t0.UnixNano())/int64(sampleEvery)))
			}
		}
		r.Storm = stormOf(cfg, counts, hs[histRecovery], merged[min(max(from-1, 0), len(merged)):])
	}
	if cfg.scenario == scSlow {
		r.Slow = &slowReport{
			Conns: counts["slow_conns"], ClosedByServer: counts["slow_closed"],
			OpenAtEnd: counts["slow_conns"] - counts["slow_closed"], CloseCodes: slowCodes,
			Sent: counts["slow_sent"], SkippedSends: counts["slow_skipped"], FoundAtClose: counts["slow_received"],
		}
	}
	return r, nil
}

// rampRank orders the ramp's end reasons from best to worst.
var rampRank = map[string]int{"": 0, rampComplete: 1, rampInterrupted: 2, rampTimeout: 3, rampStalled: 4}

func round3(f float64) float64 { return math.Round(f*1000) / 1000 }

func latencyOf(h *hdrhistogram.Histogram) latencyReport {
	if h.TotalCount() == 0 {
		return latencyReport{}
	}
	return latencyReport{
		Count: h.TotalCount(), P50: h.ValueAtQuantile(50), P90: h.ValueAtQuantile(90),
		P99: h.ValueAtQuantile(99), P999: h.ValueAtQuantile(99.9), Max: h.Max(), Mean: round3(h.Mean()),
	}
}

func connectOf(h *hdrhistogram.Histogram) connectReport {
	if h.TotalCount() == 0 {
		return connectReport{}
	}
	ms := func(us int64) float64 { return round3(float64(us) / 1e3) }
	return connectReport{
		Count: h.TotalCount(), P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)), Max: ms(h.Max()),
	}
}

// sortedKeys returns m's keys, most frequent first.
func sortedKeys(m map[string]int64) []string {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, func(a, b string) int {
		if m[a] != m[b] {
			return int(m[b] - m[a])
		}
		if a < b {
			return -1
		}
		return 1
	})
	return keys
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
