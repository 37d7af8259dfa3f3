//go:build linux

package main

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"
	"time"
)

// fakeRaw builds a process result holding the given latencies.
func fakeRaw(t *testing.T, epoch int64, lat []int64, samples []sample) *raw {
	h := newHist(histLatency)
	for _, v := range lat {
		record(h, v)
	}
	l := &loop{lat: h, connectHist: newHist(histConnect), recovery: newHist(histRecovery), closeHist: newHist(histClose),
		errs: map[string]int64{"connect: ECONNREFUSED": 1}, closeCodes: map[string]int64{}, slowCodes: map[string]int64{}}
	l.ctr.add(cReceived, int64(len(lat)))
	l.ctr.add(cSent, int64(len(lat)))
	res := &raw{EpochUnixNs: epoch, Loops: 1, SteadyStartNs: 0, SteadyEndNs: int64(time.Second), Samples: samples}
	res.collect([]*loop{l})
	// Through JSON, as a --procs child sends it.
	b, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	var back raw
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return &back
}

func TestHistogramMergeAcrossProcs(t *testing.T) {
	var a, b, all []int64
	for i := int64(1); i <= 5000; i++ {
		v := i * 7 % 20011
		if i%3 == 0 {
			a = append(a, v)
		} else {
			b = append(b, v)
		}
		all = append(all, v)
	}
	t0 := time.Unix(100, 0)
	cfg := &config{scenario: scEcho, conns: 2}
	merged, err := finalize(cfg, []*raw{fakeRaw(t, t0.UnixNano(), a, nil), fakeRaw(t, t0.UnixNano(), b, nil)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	single, err := finalize(cfg, []*raw{fakeRaw(t, t0.UnixNano(), all, nil)}, t0)
	if err != nil {
		t.Fatal(err)
	}
	if merged.LatencyUS != single.LatencyUS {
		t.Errorf("merged %+v, single process %+v", merged.LatencyUS, single.LatencyUS)
	}
	if merged.LatencyUS.Count != 5000 || merged.Received != 5000 || merged.Errors["connect: ECONNREFUSED"] != 2 {
		t.Errorf("count %d, received %d, errors %v", merged.LatencyUS.Count, merged.Received, merged.Errors)
	}
	// HdrHistogram at 3 digits: the p99 is within 0.1% of the true one.
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	exact := all[len(all)*99/100-1]
	if d := float64(merged.LatencyUS.P99-exact) / float64(exact); d < -0.002 || d > 0.002 {
		t.Errorf("p99 %d, exact %d", merged.LatencyUS.P99, exact)
	}
}

func TestSamplesAlignAcrossProcs(t *testing.T) {
	t0 := time.Unix(100, 0)
	ms := int64(time.Millisecond)
	// Child 2 started 200 ms after child 1 and stopped earlier.
	s1 := []sample{{T: 100 * ms, Open: 1, Established: 1}, {T: 200 * ms, Open: 2, Established: 2}, {T: 300 * ms, Open: 2, Established: 2}, {T: 400 * ms, Open: 2, Established: 2}}
	s2 := []sample{{T: 100 * ms, Open: 5, Established: 5}}
	got := mergeSamples([]*raw{{EpochUnixNs: t0.UnixNano(), Samples: s1}, {EpochUnixNs: t0.UnixNano() + 200*ms, Samples: s2}}, t0)
	var open []int64
	for _, s := range got {
		open = append(open, s.Open)
	}
	want := []int64{0, 1, 2, 7, 7}
	if len(open) != len(want) {
		t.Fatalf("open %v, want %v", open, want)
	}
	for i := range want {
		if open[i] != want[i] {
			t.Fatalf("open %v, want %v", open, want)
		}
	}
}

// TestReportJSONShape pins the field names scripts rely on.
func TestReportJSONShape(t *testing.T) {
	t0 := time.Unix(100, 0)
	for _, sc := range scenarios {
		cfg := &config{scenario: sc, conns: 1, targets: []target{{url: "ws://127.0.0.1:1/ws"}}}
		rep, err := finalize(cfg, []*raw{fakeRaw(t, t0.UnixNano(), []int64{5, 10}, nil)}, t0)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(rep)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		for _, path := range []string{
			"scenario", "targets", "connections.attempted", "connections.established", "connections.failed",
			"connections.closed_by_server", "messages_sent", "messages_received", "errors", "msgs_per_sec",
			"latency_us.p50", "latency_us.p99", "latency_us.p999", "latency_us.max", "connect_ms.p50",
			"connect_ms.p99", "timeline", "histograms.latency_us",
		} {
			v := any(m)
			for _, k := range strings.Split(path, ".") {
				obj, ok := v.(map[string]any)
				if !ok {
					v = nil
					break
				}
				v = obj[k]
			}
			if v == nil {
				t.Errorf("%s: no %s in %s", sc, path, b)
			}
		}
		if _, ok := m["storm"]; ok != (sc == scStorm) {
			t.Errorf("%s: storm section present = %v", sc, ok)
		}
		if _, ok := m["slow"]; ok != (sc == scSlow) {
			t.Errorf("%s: slow section present = %v", sc, ok)
		}
	}
}
