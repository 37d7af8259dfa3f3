// Command compare runs the same loadtest scenarios against wsgate and its
// peers, one server after another, and prints one table. bench/run.sh
// builds everything and calls it; see docs/benchmarks.md.
//
// The server is pinned to one core set and the client to another
// (taskset); server CPU is read from /proc/PID/stat over the measured
// phase only, so a saturated client cannot distort it. Server RSS is read
// from /proc/PID/status and kernel slab from /proc/meminfo.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
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
	workDir    string
}

func main() {
	var o options
	var servers, only string
	flag.StringVar(&o.bin, "bin", "bin/bench", "directory with loadtest, wsgate, gorilla, gws, nbio")
	flag.StringVar(&servers, "servers", "wsgate,gorilla,gws,nbio", "servers to compare, in order")
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
	flag.StringVar(&only, "only", "idle,cpu,upgrade,rate", "measurements to run")
	flag.Parse()
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

	IdleConns      []int     `json:"idle_conns"`
	IdleRSS        []float64 `json:"idle_rss_bytes"`
	IdleSlab       []float64 `json:"idle_slab_delta_bytes"`
	BytesPerConn   float64   `json:"bytes_per_idle_conn"`    // slope of RSS over connections
	SlabPerSocket  float64   `json:"kernel_slab_per_socket"` // slope of slab over connections, halved: both ends are here
	EchoConns      []int     `json:"echo_conns"`
	CPUPerEcho     []float64 `json:"cpu_us_per_echo"`
	EchoMsgsPerSec []float64 `json:"echo_msgs_per_sec"`
	EchoServerUtil []float64 `json:"echo_server_core_util"`
	UpgradeConns   int       `json:"upgrade_conns"`
	UpgradesPerSec float64   `json:"upgrades_per_sec"`
	CPUPerUpgrade  float64   `json:"cpu_us_per_upgrade"`
	UpgradeUtil    float64   `json:"upgrade_server_core_util"`
	RateConns      int       `json:"rate_conns"`
	RateP99MS      float64   `json:"rate_p99_ms"`
	RateP999MS     float64   `json:"rate_p999_ms"`
	RateErrors     int64     `json:"rate_errors"`
	Notes          []string  `json:"notes,omitempty"`
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

// --- Server processes.

type server struct {
	cmd  *exec.Cmd
	pid  int
	url  string
	logs *bytes.Buffer
}

func (o *options) start(name string) (*server, error) {
	o.port++
	addr := fmt.Sprintf("127.0.0.1:%d", o.port)
	args := []string{"-c", o.serverCPU, filepath.Join(o.bin, name), "--listen", addr, "--path", "/ws"}
	if name == "wsgate" {
		args = append(args, "--loops", strconv.Itoa(cpuCount(o.serverCPU)))
	}
	cmd := exec.Command("taskset", args...)
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(cpuCount(o.serverCPU)))
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, pid: cmd.Process.Pid, url: "ws://" + addr + "/ws", logs: &logs}
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 100 {
			s.stop()
			return nil, fmt.Errorf("no /healthz on %s: %v: %s", addr, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let start-up allocation settle
	return s, nil
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}

// --- /proc readings.

func rssBytes(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return kbField(b, "VmRSS:")
}

// slabBytes is the kernel's slab memory in use: the sum of active objects
// times object size over /proc/slabinfo, leaving out the TIME_WAIT and
// SYN-queue caches, which earlier runs fill and which drain on their own
// while a measurement runs. Without slabinfo it falls back to meminfo's
// Slab line.
func slabBytes() (float64, error) {
	b, err := os.ReadFile("/proc/slabinfo")
	if err != nil {
		b, err = os.ReadFile("/proc/meminfo")
		if err != nil {
			return 0, err
		}
		return kbField(b, "Slab:")
	}
	var sum float64
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || strings.HasPrefix(f[0], "tw_sock") || strings.HasPrefix(f[0], "request_sock") {
			continue
		}
		active, err1 := strconv.ParseFloat(f[1], 64)
		size, err2 := strconv.ParseFloat(f[3], 64)
		if err1 == nil && err2 == nil {
			sum += active * size
		}
	}
	return sum, nil
}

func kbField(b []byte, key string) (float64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && f[0] == key {
			kb, err := strconv.ParseFloat(f[1], 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no " + key)
}

// clkTck is USER_HZ, 100 on every Linux that matters.
const clkTck = 100

// cpuSec is the process's user plus system CPU time, all threads.
func cpuSec(pid int) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces: ") S ppid ...".
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clkTck, nil
}

// cpuSampler reads a process's CPU time every 20 ms, so the time spent in
// any wall-clock window can be read off afterwards.
type cpuSampler struct {
	mu   sync.Mutex
	at   []time.Time
	cpu  []float64
	stop chan struct{}
	done chan struct{}
}

func sampleCPU(pid int) *cpuSampler {
	s := &cpuSampler{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if c, err := cpuSec(pid); err == nil {
				s.mu.Lock()
				s.at, s.cpu = append(s.at, time.Now()), append(s.cpu, c)
				s.mu.Unlock()
			}
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *cpuSampler) end() {
	close(s.stop)
	<-s.done
}

// at returns the CPU seconds used by time t, interpolated between samples.
func (s *cpuSampler) value(t time.Time) float64 {
	for i := 1; i < len(s.at); i++ {
		if !s.at[i].Before(t) {
			span := s.at[i].Sub(s.at[i-1]).Seconds()
			if span <= 0 {
				return s.cpu[i]
			}
			f := t.Sub(s.at[i-1]).Seconds() / span
			return s.cpu[i-1] + f*(s.cpu[i]-s.cpu[i-1])
		}
	}
	return s.cpu[len(s.cpu)-1]
}

// --- The load generator.

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
	Sent       int64            `json:"messages_sent"`
	Received   int64            `json:"messages_received"`
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
	s, err := o.start(name)
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
	s, err := o.start(name)
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
	s, err := o.start(name)
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
	s, err := o.start(name)
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

// cpuCount counts the CPUs in a taskset list such as "1-3,5".
func cpuCount(list string) int {
	n := 0
	for _, part := range strings.Split(list, ",") {
		a, b, isRange := strings.Cut(part, "-")
		lo, err := strconv.Atoi(a)
		if err != nil {
			continue
		}
		hi := lo
		if isRange {
			hi, _ = strconv.Atoi(b)
		}
		n += max(0, hi-lo+1)
	}
	return max(n, 1)
}

// --- The table.

type column struct {
	head   string
	lower  bool // lower is better
	format string
	get    func(*result) float64
}

func (o *options) columns() []column {
	at := func(i int) func(*result) float64 {
		return func(r *result) float64 {
			if i < len(r.CPUPerEcho) {
				return r.CPUPerEcho[i]
			}
			return 0
		}
	}
	return []column{
		{"user-space B / idle conn (RSS slope)", true, "%.0f", func(r *result) float64 { return r.BytesPerConn }},
		{"kernel slab B / socket", true, "%.0f", func(r *result) float64 { return r.SlabPerSocket }},
		{fmt.Sprintf("server CPU µs / 1 KiB echo @%d", o.count(1000)), true, "%.1f", at(0)},
		{fmt.Sprintf("server CPU µs / 1 KiB echo @%d", o.count(10000)), true, "%.1f", at(1)},
		{"upgrades/s, server on 1 core", false, "%.0f", func(r *result) float64 { return r.UpgradesPerSec }},
		{"server CPU µs / upgrade", true, "%.1f", func(r *result) float64 { return r.CPUPerUpgrade }},
		{fmt.Sprintf("rate p99 ms @5k msg/s, %d conns", o.count(19000)), true, "%.2f", func(r *result) float64 { return r.RateP99MS }},
	}
}

func writeTable(w io.Writer, o *options, rs []*result) {
	cols := o.columns()
	fmt.Fprintf(w, "| server |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.head)
	}
	fmt.Fprintf(w, "\n|---|")
	for range cols {
		fmt.Fprintf(w, "---:|")
	}
	fmt.Fprintln(w)
	// The best peer per column: wsgate is compared with the others.
	best := make([]float64, len(cols))
	for i, c := range cols {
		for _, r := range rs {
			v := c.get(r)
			if r.Server == "wsgate" || v <= 0 {
				continue
			}
			if best[i] == 0 || (c.lower && v < best[i]) || (!c.lower && v > best[i]) {
				best[i] = v
			}
		}
	}
	for _, r := range rs {
		fmt.Fprintf(w, "| %s |", r.Server)
		for i, c := range cols {
			v := c.get(r)
			if v <= 0 {
				fmt.Fprintf(w, " n/a |")
				continue
			}
			cell := fmt.Sprintf(c.format, v)
			if best[i] > 0 {
				cell += fmt.Sprintf(" (%.2fx)", v/best[i])
			}
			fmt.Fprintf(w, " %s |", cell)
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are to the best peer in each column (gorilla, gws, nbio; lower is better except upgrades/s).")
	fmt.Fprintln(w, "Kernel slab is per socket: the slope over connections halved, since client and server sockets are both on this machine.")
	fmt.Fprintln(w, "Upgrades/s is client-bound where the server core use below is well under 100%; server CPU per upgrade is the server-side figure.")
	goals(w, rs, cols, best)
	for _, r := range rs {
		if len(r.EchoMsgsPerSec)+len(r.IdleRSS) > 0 || r.UpgradesPerSec > 0 || r.RateConns > 0 {
			fmt.Fprintf(w, "- %s: echo throughput %s msg/s, server core use %s; upgrades: %.1f µs CPU each, server core use %.0f%%; rate p99.9 %.2f ms, %d errors; idle RSS %s at %v conns\n",
				r.Server, floats(r.EchoMsgsPerSec, "%.0f"), floats(r.EchoServerUtil, "%.2f"), r.CPUPerUpgrade, 100*r.UpgradeUtil,
				r.RateP999MS, r.RateErrors, floats(r.IdleRSS, "%.0f"), r.IdleConns)
		}
		for _, n := range r.Notes {
			fmt.Fprintf(w, "- %s: %s\n", r.Server, n)
		}
	}
}

func floats(v []float64, f string) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = fmt.Sprintf(f, x)
	}
	return "[" + strings.Join(s, " ") + "]"
}

// goals checks wsgate's figures against the project's targets.
func goals(w io.Writer, rs []*result, cols []column, best []float64) {
	var ws, nb *result
	for _, r := range rs {
		switch r.Server {
		case "wsgate":
			ws = r
		case "nbio":
			nb = r
		}
	}
	if ws == nil {
		return
	}
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintln(w, "Goals for wsgate:")
	if nb != nil && nb.BytesPerConn > 0 && ws.BytesPerConn > 0 {
		x := ws.BytesPerConn / nb.BytesPerConn
		fmt.Fprintf(w, "- bytes per idle connection <= 0.5x nbio's: %.2fx, %s\n", x, verdict(x <= 0.5))
	}
	for i, c := range cols {
		v := c.get(ws)
		if v <= 0 || best[i] <= 0 {
			continue
		}
		x := v / best[i]
		switch {
		case strings.HasPrefix(c.head, "server CPU µs / 1 KiB"):
			fmt.Fprintf(w, "- %s <= 0.6x the best peer's: %.2fx, %s\n", c.head, x, verdict(x <= 0.6))
		case strings.HasPrefix(c.head, "upgrades/s"):
			fmt.Fprintf(w, "- upgrades/s >= 2x the best peer's: %.2fx, %s (observed rate)\n", x, verdict(x >= 2))
		case strings.HasPrefix(c.head, "server CPU µs / upgrade"):
			fmt.Fprintf(w, "- upgrades per server core, from CPU per upgrade: %.2fx the best peer's, %s\n", 1/x, verdict(1/x >= 2))
		}
	}
	if ws.RateP99MS > 0 {
		fmt.Fprintf(w, "- rate p99 <= 2 ms: %.2f ms, %s\n", ws.RateP99MS, verdict(ws.RateP99MS <= 2))
	}
	fmt.Fprintln(w)
}
