//go:build linux

package main

import (
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
	RampEnd       string            `json:"ramp_end"`
	SteadyOpen    int64             `json:"steady_open"`     // connections open when the measured phase began
	SteadyRecv    int64             `json:"steady_received"` // messages received within the measured phase
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
		histClose: newHist(histClose),
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
		hs[histClose].Merge(l.closeHist)
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
