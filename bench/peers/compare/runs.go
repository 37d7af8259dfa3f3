package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The load generator and the four measurements.

type report struct {
	Started    time.Time `json:"started"`
	SteadySec  float64   `json:"steady_s"`
	SteadyFrom int64     `json:"steady_start_unix_ms"`
	SteadyTo   int64     `json:"steady_end_unix_ms"`
	Ramp       struct {
		StartUnixUS    int64   `json:"start_unix_us"`
		EndUnixUS      int64   `json:"end_unix_us"`
		Upgrades       int64   `json:"upgrades"`
		UpgradesPerSec float64 `json:"upgrades_per_sec"`
	} `json:"ramp"`
	Connections struct {
		Attempted, Established, Failed int64
		ClosedByServer                 int64 `json:"closed_by_server"`
	} `json:"connections"`
	Sent       int64 `json:"messages_sent"`
	Received   int64 `json:"messages_received"`
	SteadyRecv int64 `json:"received_in_steady"`
	Fanout     *struct {
		Subscribers int64 `json:"subscribers"`
		Published   int64 `json:"published"`
		Expected    int64 `json:"expected_deliveries"`
		Delivered   int64 `json:"delivered"`
		Lost        int64 `json:"lost"`
	} `json:"fanout"`
	MsgsPerSec float64          `json:"msgs_per_sec"`
	Errors     map[string]int64 `json:"errors"`
	LatencyUS  struct {
		P50, P99, P999, Max int64
	} `json:"latency_us"`
}

// loadtest runs one scenario pinned to the client cores. ready, if set, is
// called once the ramp is over, while connections are held.
func (o *options) loadtest(s *server, ready func(), args ...string) (*report, error) {
	js := filepath.Join(o.workDir, "report.json")
	rf := filepath.Join(o.workDir, "ready")
	os.Remove(js)
	os.Remove(rf)
	full := append([]string{"-c", o.clientCPU, filepath.Join(o.bin, "loadtest")}, args...)
	full = append(full, "--url", s.url, "--json", js, "--quiet", "--loops", strconv.Itoa(o.clientLoop),
		"--source-ips", o.sourceIPs, "--ready-file", rf, "--max-pending", "1000")
	if o.compression {
		full = append(full, "--compression")
	}
	cmd := exec.Command("taskset", full...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	finished := false
	for ready != nil && !finished {
		select {
		case werr = <-done:
			finished = true
		case <-time.After(50 * time.Millisecond):
			if _, err := os.Stat(rf); err == nil {
				ready()
				ready = nil
			}
		}
	}
	if !finished {
		werr = <-done
	}
	if werr != nil {
		return nil, fmt.Errorf("loadtest: %v\n%s", werr, out.String())
	}
	b, err := os.ReadFile(js)
	if err != nil {
		return nil, err
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, err
	}
	return &rep, nil
}

// idle holds n connections and reads the server's RSS and the kernel's
// slab while they are held.
func (o *options) idle(name string, n int) (rss, slab float64, err error) {
	s, err := o.start(name, false)
	if err != nil {
		return 0, 0, err
	}
	defer s.stop()
	slab0, err := slabBytes()
	if err != nil {
		return 0, 0, err
	}
	var rerr error
	rep, err := o.loadtest(s, func() {
		time.Sleep(time.Second)
		rss, rerr = rssBytes(s.pid)
		var slab1 float64
		slab1, rerr = slabBytes()
		slab = slab1 - slab0
	}, "connect", "--conns", strconv.Itoa(n), "--ramp", "5000", "--duration", o.hold.String())
	if err != nil {
		return 0, 0, err
	}
	if rerr != nil {
		return 0, 0, rerr
	}
	if rep.Connections.Established != int64(n) {
		return 0, 0, fmt.Errorf("held %d of %d connections (%v)", rep.Connections.Established, n, rep.Errors)
	}
	return rss, slab, nil
}

// echo runs the closed-loop echo of 1 KiB messages and returns server CPU
// microseconds per echoed message over the measured phase.
func (o *options) echo(name string, n int) (us, rate, util float64, err error) {
	s, err := o.start(name, false)
	if err != nil {
		return 0, 0, 0, err
	}
	defer s.stop()
	cs := sampleCPU(s.pid)
	rep, err := o.loadtest(s, nil, "echo", "--conns", strconv.Itoa(n), "--ramp", "5000", "--size", "1024",
		"--inflight", "1", "--duration", o.duration.String())
	cs.end()
	if err != nil {
		return 0, 0, 0, err
	}
	from, to := time.UnixMilli(rep.SteadyFrom), time.UnixMilli(rep.SteadyTo)
	cpu := cs.value(to) - cs.value(from)
	msgs := rep.MsgsPerSec * rep.SteadySec
	if msgs <= 0 {
		return 0, 0, 0, fmt.Errorf("no messages echoed (%v)", rep.Errors)
	}
	return cpu * 1e6 / msgs, rep.MsgsPerSec, cpu / to.Sub(from).Seconds(), nil
}

// upgrades opens n connections as fast as the server completes them (at
// most 1000 attempts in flight) and times the ramp.
func (o *options) upgrades(name string, n int, r *result) error {
	s, err := o.start(name, false)
	if err != nil {
		return err
	}
	defer s.stop()
	cs := sampleCPU(s.pid)
	rep, err := o.loadtest(s, nil, "connect", "--conns", strconv.Itoa(n), "--ramp", "200000", "--duration", "500ms")
	cs.end()
	if err != nil {
		return err
	}
	from, to := time.UnixMicro(rep.Ramp.StartUnixUS), time.UnixMicro(rep.Ramp.EndUnixUS)
	secs := to.Sub(from).Seconds()
	if secs <= 0 || rep.Ramp.Upgrades == 0 {
		return fmt.Errorf("no upgrades (%v)", rep.Errors)
	}
	r.UpgradeConns = n
	r.UpgradesPerSec = rep.Ramp.UpgradesPerSec
	cpu := cs.value(to) - cs.value(from)
	r.CPUPerUpgrade = cpu * 1e6 / float64(rep.Ramp.Upgrades)
	r.UpgradeUtil = cpu / secs
	if rep.Connections.Failed > 0 {
		r.note("upgrades: %d failed (%v)", rep.Connections.Failed, rep.Errors)
	}
	return nil
}

// rate sends 5,000 messages per second in total over n connections and
// reads the p99 from the intended send time.
func (o *options) rate(name string, n int, r *result) error {
	s, err := o.start(name, false)
	if err != nil {
		return err
	}
	defer s.stop()
	rep, err := o.loadtest(s, nil, "rate", "--conns", strconv.Itoa(n), "--ramp", "5000", "--rate", "5000",
		"--size", "64", "--duration", o.duration.String())
	if err != nil {
		return err
	}
	r.RateConns = n
	r.RateP99MS = float64(rep.LatencyUS.P99) / 1e3
	r.RateP999MS = float64(rep.LatencyUS.P999) / 1e3
	for _, v := range rep.Errors {
		r.RateErrors += v
	}
	if rep.Sent != rep.Received {
		r.note("rate: sent %d, received %d", rep.Sent, rep.Received)
	}
	return nil
}
