//go:build linux

package main

import (
	"math"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Merging across --procs children: samples are aligned on wall-clock time,
// and the derived figures (timeline, storm) are computed once, from the
// merged samples and histograms.

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
