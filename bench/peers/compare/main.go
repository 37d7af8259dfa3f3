// Command compare runs the same loadtest scenarios against wsgate, its
// peers and the raw-epoll floor, one server after another, and prints two
// tables: echo, memory, upgrades and latency, then fan-out. Every figure is
// given as a ratio to the floor (what the read and write system calls cost
// with nothing around them) and to the best peer. bench/run.sh builds
// everything and calls it; see docs/benchmarks.md.
//
// The server is pinned to one core set and the client to another
// (taskset); server CPU is read from /proc/PID/stat over the measured
// phase only, so a saturated client cannot distort it. Server RSS is read
// from /proc/PID/status and kernel slab from /proc/meminfo.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	bin        string
	servers    []string
	scale      float64
	duration   time.Duration
	hold       time.Duration
	serverCPU  string
	clientCPU  string
	clientLoop int
	sourceIPs  string
	port       int
	out        string
	jsonOut    string
	only       map[string]bool
	fanouts    []fanoutCase
	workDir    string
	// compression: loadtest --compression, gws --compression (wsgate
	// negotiates by default); for servers that speak permessage-deflate.
	compression bool
}

func main() {
	var o options
	var servers, only, fanouts string
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory with loadtest, floor, gnet, wsgate, gorilla, gws, nbio")
	flag.StringVar(&servers, "servers", "floor,gnet,wsgate,gorilla,gws,nbio", "servers to compare, in order (floor is the raw-epoll floor, gnet bare gnet: the baselines; a wsgate-NAME binary in --bin runs as another wsgate build)")
	flag.Float64Var(&o.scale, "scale", 1, "multiplies every connection count (5k/10k/19k idle, 1k/10k echo, 10k upgrades, 19k rate); capped at 19,000 by the server's 20,000 descriptors")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured phase of the echo and rate runs")
	flag.DurationVar(&o.hold, "hold", 3*time.Second, "how long idle connections are held (RSS is read 1s in)")
	flag.StringVar(&o.serverCPU, "server-cpu", "0", "taskset list for the server")
	flag.StringVar(&o.clientCPU, "client-cpu", "1", "taskset list for the load generator")
	flag.IntVar(&o.clientLoop, "client-loops", 0, "load generator event loops (0: one per client core)")
	flag.StringVar(&o.sourceIPs, "source-ips", "127.0.0.1-127.0.0.8", "client source addresses")
	flag.IntVar(&o.port, "port", 65100, "first listen port; each server start takes the next")
	flag.StringVar(&o.out, "out", "", "also write the table (markdown) to this file")
	flag.StringVar(&o.jsonOut, "json", "", "write every figure as JSON to this file")
	flag.StringVar(&only, "only", "idle,cpu,upgrade,rate,fanout", "measurements to run")
	flag.StringVar(&fanouts, "fanout", defaultFanouts, "fan-out cases, SUBSCRIBERSxRATExSIZE, comma-separated (subscribers scaled by --scale)")
	flag.BoolVar(&o.compression, "compression", false, "clients offer permessage-deflate and compress (loadtest --compression), gws gets --compression; use with --servers wsgate,gws")
	flag.Parse()
	var err error
	if o.fanouts, err = parseFanouts(fanouts); err != nil {
		fatal("compare: --fanout: " + err.Error())
	}
	o.servers = strings.Split(servers, ",")
	o.only = map[string]bool{}
	for _, m := range strings.Split(only, ",") {
		o.only[m] = true
	}
	if o.clientLoop == 0 {
		o.clientLoop = cpuCount(o.clientCPU)
	}
	if o.scale <= 0 || o.scale > 10 {
		fatal("compare: --scale must be in (0, 10]")
	}
	dir, err := os.MkdirTemp("", "wsgate-compare-")
	if err != nil {
		fatal(err.Error())
	}
	defer os.RemoveAll(dir)
	o.workDir = dir

	var results []*result
	for _, name := range o.servers {
		if _, err := os.Stat(filepath.Join(o.bin, name)); err != nil {
			r := &result{Server: name, Notes: []string{"not built: " + err.Error()}}
			results = append(results, r)
			continue
		}
		fmt.Fprintf(os.Stderr, "== %s\n", name)
		results = append(results, o.measure(name))
	}
	var tbl bytes.Buffer
	writeTable(&tbl, &o, results)
	writeFanoutTable(&tbl, &o, results)
	goals(&tbl, &o, results)
	os.Stdout.Write(tbl.Bytes())
	if o.out != "" {
		_ = os.WriteFile(o.out, tbl.Bytes(), 0o644)
	}
	if o.jsonOut != "" {
		b, _ := json.MarshalIndent(results, "", "  ")
		_ = os.WriteFile(o.jsonOut, b, 0o644)
	}
}

func fatal(msg string) {
	fmt.Fprintln(os.Stderr, msg)
	os.Exit(1)
}

// count scales a connection count, within what one server process can hold.
func (o *options) count(n int) int {
	return max(10, min(19000, int(math.Round(float64(n)*o.scale))))
}

// result holds one server's figures. A zero figure was not measured.
type result struct {
	Server string `json:"server"`

	IdleConns      []int          `json:"idle_conns"`
	IdleRSS        []float64      `json:"idle_rss_bytes"`
	IdleSlab       []float64      `json:"idle_slab_delta_bytes"`
	BytesPerConn   float64        `json:"bytes_per_idle_conn"`    // slope of RSS over connections
	SlabPerSocket  float64        `json:"kernel_slab_per_socket"` // slope of slab over connections, halved: both ends are here
	EchoConns      []int          `json:"echo_conns"`
	CPUPerEcho     []float64      `json:"cpu_us_per_echo"`
	EchoMsgsPerSec []float64      `json:"echo_msgs_per_sec"`
	EchoServerUtil []float64      `json:"echo_server_core_util"`
	UpgradeConns   int            `json:"upgrade_conns"`
	UpgradesPerSec float64        `json:"upgrades_per_sec"`
	CPUPerUpgrade  float64        `json:"cpu_us_per_upgrade"`
	UpgradeUtil    float64        `json:"upgrade_server_core_util"`
	RateConns      int            `json:"rate_conns"`
	RateP99MS      float64        `json:"rate_p99_ms"`
	RateP999MS     float64        `json:"rate_p999_ms"`
	RateErrors     int64          `json:"rate_errors"`
	Fanout         []fanoutResult `json:"fanout,omitempty"`
	Notes          []string       `json:"notes,omitempty"`
}

func (r *result) note(format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	fmt.Fprintln(os.Stderr, "   "+msg)
	r.Notes = append(r.Notes, msg)
}

func (o *options) measure(name string) *result {
	r := &result{Server: name}
	if o.only["idle"] {
		for _, n := range []int{o.count(5000), o.count(10000), o.count(19000)} {
			rss, slab, err := o.idle(name, n)
			if err != nil {
				r.note("idle %d: %v", n, err)
				continue
			}
			r.IdleConns = append(r.IdleConns, n)
			r.IdleRSS = append(r.IdleRSS, rss)
			r.IdleSlab = append(r.IdleSlab, slab)
		}
		if len(r.IdleConns) >= 2 {
			r.BytesPerConn = slope(r.IdleConns, r.IdleRSS)
			r.SlabPerSocket = slope(r.IdleConns, r.IdleSlab) / 2
		}
	}
	if o.only["cpu"] {
		for _, n := range []int{o.count(1000), o.count(10000)} {
			us, rate, util, err := o.echo(name, n)
			if err != nil {
				r.note("echo %d: %v", n, err)
				continue
			}
			r.EchoConns = append(r.EchoConns, n)
			r.CPUPerEcho = append(r.CPUPerEcho, us)
			r.EchoMsgsPerSec = append(r.EchoMsgsPerSec, rate)
			r.EchoServerUtil = append(r.EchoServerUtil, util)
		}
	}
	if o.only["upgrade"] {
		n := o.count(10000)
		if err := o.upgrades(name, n, r); err != nil {
			r.note("upgrades %d: %v", n, err)
		}
	}
	if o.only["rate"] {
		n := o.count(19000)
		if err := o.rate(name, n, r); err != nil {
			r.note("rate %d: %v", n, err)
		}
	}
	if o.only["fanout"] && name != "gnet" { // bare gnet has no broadcast
		for _, fc := range o.fanouts {
			fc.Subs = o.count(fc.Subs)
			fr, err := o.fanout(name, fc)
			if err != nil {
				r.note("fanout %s: %v", fc, err)
				continue
			}
			r.Fanout = append(r.Fanout, *fr)
		}
	}
	return r
}

// slope is the least-squares slope of y over x: the marginal cost of one
// more connection, free of the server's fixed footprint.
func slope(x []int, y []float64) float64 {
	var sx, sy, sxx, sxy float64
	n := float64(len(x))
	for i := range x {
		sx += float64(x[i])
		sy += y[i]
		sxx += float64(x[i]) * float64(x[i])
		sxy += float64(x[i]) * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}
