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

// raw is one process's result before merging: what a --procs child sends
// its parent, and what a single process turns into its report. Counters and
// maps add up; histograms merge; samples align on wall-clock time.
type raw struct {
	EpochUnixNs   int64             `json:"epoch_unix_ns"`
	Loops         int               `json:"loops"`
	SteadyStartNs int64             `json:"steady_start_ns"`
	SteadyEndNs   int64             `json:"steady_end_ns"`
	StormStartNs  int64             `json:"storm_start_ns"`
	RampFirstNs   int64             `json:"ramp_first_ns"`
	RampLastNs    int64             `json:"ramp_last_ns"`
	RampUpgrades  int64             `json:"ramp_upgrades"`
	ClientRSS     int64             `json:"client_rss"`
	ClientHeap    int64             `json:"client_heap"`
	ClientOpen    int64             `json:"client_open"`
	Counts        map[string]int64  `json:"counts"`
	Errors        map[string]int64  `json:"errors"`
	CloseCodes    map[string]int64  `json:"close_codes"`
	SlowCodes     map[string]int64  `json:"slow_close_codes"`
	Hist          map[string]string `json:"hist"`
	Samples       []sample          `json:"samples"`
}

// collect gathers the loops' results; the loops must have returned.
func (res *raw) collect(loops []*loop) {
	res.Counts = map[string]int64{}
	res.Errors, res.CloseCodes, res.SlowCodes = map[string]int64{}, map[string]int64{}, map[string]int64{}
	hs := map[string]*hdrhistogram.Histogram{
		histLatency: newHist(histLatency), histConnect: newHist(histConnect), histRecovery: newHist(histRecovery),
	}
	for _, l := range loops {
		if l.rampFirst > 0 && (res.RampFirstNs == 0 || l.rampFirst < res.RampFirstNs) {
			res.RampFirstNs = l.rampFirst
		}
		res.RampLastNs = max(res.RampLastNs, l.rampLast)
		c := l.ctr.snapshot()
		for i, v := range c {
			res.Counts[counterNames[i]] += v
		}
		addMap(res.Errors, l.errs)
		addMap(res.CloseCodes, l.closeCodes)
		addMap(res.SlowCodes, l.slowCodes)
		hs[histLatency].Merge(l.lat)
		hs[histConnect].Merge(l.connectHist)
		hs[histRecovery].Merge(l.recovery)
	}
	res.Hist = encodeHists(hs)
}

func addMap(dst, src map[string]int64) {
	for k, v := range src {
		dst[k] += v
	}
}

// encodeHists writes histograms in HdrHistogram's compressed V2 form
// (base64 text), which every HdrHistogram port can decode.
func encodeHists(hs map[string]*hdrhistogram.Histogram) map[string]string {
	out := map[string]string{}
	for k, h := range hs {
		b, err := h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
		if err == nil {
			out[k] = string(b)
		}
	}
	return out
}

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
	LostInFlight int64             `json:"messages_lost_in_flight"`
	BytesSent    int64             `json:"bytes_sent"`
	BytesRecv    int64             `json:"bytes_received"`
	Errors       map[string]int64  `json:"errors"`
	CloseCodes   map[string]int64  `json:"close_codes"`
	MsgsPerSec   float64           `json:"msgs_per_sec"`
	LatencyUS    latencyReport     `json:"latency_us"`
	ConnectMS    connectReport     `json:"connect_ms"`
	Client       clientReport      `json:"client"`
	Storm        *stormReport      `json:"storm,omitempty"`
	Slow         *slowReport       `json:"slow,omitempty"`
	Timeline     []point           `json:"timeline"`
	Histograms   map[string]string `json:"histograms"`
	Notes        []string          `json:"notes,omitempty"`

	hist map[string]*hdrhistogram.Histogram
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
}

// rampReport times the ramp exactly, from the first attempt to the last
// upgrade completed during it: with a --ramp faster than the server, the
// upgrade rate the server sustains.
type rampReport struct {
	StartUnixUS    int64   `json:"start_unix_us"`
	EndUnixUS      int64   `json:"end_unix_us"`
	Seconds        float64 `json:"seconds"`
	Upgrades       int64   `json:"upgrades"`
	UpgradesPerSec float64 `json:"upgrades_per_sec"`
}

type connReport struct {
	Attempted      int64 `json:"attempted"`
	Established    int64 `json:"established"`
	Failed         int64 `json:"failed"`
	ClosedByServer int64 `json:"closed_by_server"`
	OpenMax        int64 `json:"open_max"`
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
		Errors: map[string]int64{}, CloseCodes: map[string]int64{},
		Config: reportConfig{
			Conns: cfg.conns, DurationS: cfg.duration.Seconds(), Ramp: cfg.ramp, Size: cfg.size,
			SourceIPs: len(cfg.sourceIPs),
		},
	}
	for _, t := range cfg.targets {
		r.Targets = append(r.Targets, t.url)
	}
	switch cfg.scenario {
	case scEcho:
		r.Config.Inflight = cfg.inflight
	case scRate:
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
	}
	var steady float64
	for _, x := range raws {
		if x.RampFirstNs > 0 {
			from, to := (x.EpochUnixNs+x.RampFirstNs)/1e3, (x.EpochUnixNs+x.RampLastNs)/1e3
			if r.Ramp.StartUnixUS == 0 || from < r.Ramp.StartUnixUS {
				r.Ramp.StartUnixUS = from
			}
			r.Ramp.EndUnixUS = max(r.Ramp.EndUnixUS, to)
			r.Ramp.Upgrades += x.RampUpgrades
		}
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
		ClosedByServer: counts["closed_by_server"],
	}
	r.Sent, r.Received, r.LostInFlight = counts["sent"], counts["received"], counts["lost_in_flight"]
	r.BytesSent, r.BytesRecv = counts["bytes_sent"], counts["bytes_received"]
	if r.SteadySec > 0 {
		r.MsgsPerSec = round3(float64(r.Received) / r.SteadySec)
	}
	r.LatencyUS = latencyOf(hs[histLatency])
	r.ConnectMS = connectOf(hs[histConnect])

	merged := mergeSamples(raws, t0)
	for _, s := range merged {
		r.Connections.OpenMax = max(r.Connections.OpenMax, s.Open)
	}
	r.Timeline = timeline(merged)
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

// mergeSamples puts every process's samples on one 100 ms grid starting at
// t0 and adds them up; a process with no sample in a slot contributes its
// last earlier one (counters are cumulative, open is a level).
func mergeSamples(raws []*raw, t0 time.Time) []sample {
	slot := func(x *raw, s sample) int {
		return int(math.Round(float64(x.EpochUnixNs+s.T-t0.UnixNano()) / float64(sampleEvery)))
	}
	n := 0
	for _, x := range raws {
		if len(x.Samples) > 0 {
			n = max(n, slot(x, x.Samples[len(x.Samples)-1])+1)
		}
	}
	out := make([]sample, n)
	for i := range out {
		out[i].T = int64(i) * int64(sampleEvery)
	}
	for _, x := range raws {
		j := 0
		var last sample
		for i := range out {
			for j < len(x.Samples) && slot(x, x.Samples[j]) <= i {
				last = x.Samples[j]
				j++
			}
			out[i].Attempted += last.Attempted
			out[i].Established += last.Established
			out[i].Open += last.Open
			out[i].Sent += last.Sent
			out[i].Received += last.Received
			out[i].Errors += last.Errors
		}
	}
	return out
}

// timeline turns the 100 ms grid into one point per second.
func timeline(s []sample) []point {
	per := int(time.Second / sampleEvery)
	out := []point{}
	var prev sample
	for i := per - 1; i < len(s); i += per {
		cur := s[i]
		out = append(out, point{
			T: round3(float64(cur.T+int64(sampleEvery)) / 1e9), Open: cur.Open,
			Accepts: float64(cur.Established - prev.Established), MsgsPerSec: float64(cur.Received - prev.Received),
			Errors: cur.Errors,
		})
		prev = cur
	}
	if rem := len(s) % per; rem != 0 && len(s) > 0 {
		cur := s[len(s)-1]
		sec := float64(rem) * sampleEvery.Seconds()
		out = append(out, point{
			T: round3(float64(cur.T+int64(sampleEvery)) / 1e9), Open: cur.Open,
			Accepts:    round3(float64(cur.Established-prev.Established) / sec),
			MsgsPerSec: round3(float64(cur.Received-prev.Received) / sec), Errors: cur.Errors,
		})
	}
	return out
}

func stormOf(cfg *config, counts map[string]int64, rec *hdrhistogram.Histogram, s []sample) *stormReport {
	st := &stormReport{
		Mode: cfg.stormMode, Dropped: counts["dropped"], Recovered: counts["recovered"], Back99MS: -1, BackAllMS: -1,
		ReconnectAttempts: max(0, counts["attempted"]-int64(cfg.conns)),
	}
	if st.Dropped > 0 && st.Recovered > 0 {
		// The ceil(0.99*dropped)-th fastest return, as a quantile of those
		// that did return.
		need := int64(math.Ceil(0.99 * float64(st.Dropped)))
		if st.Recovered >= need {
			st.Back99MS = float64(rec.ValueAtQuantile(100 * float64(need) / float64(st.Recovered)))
		}
		if st.Recovered == st.Dropped {
			st.BackAllMS = float64(rec.Max())
		}
	}
	// Peak accept rate: most upgrades completed in any one-second window
	// from the storm on.
	per := int(time.Second / sampleEvery)
	for i := range s {
		j := min(i+per, len(s)-1)
		if j == i {
			break
		}
		st.PeakAcceptPerSec = max(st.PeakAcceptPerSec, float64(s[j].Established-s[i].Established))
	}
	return st
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
