//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"runtime"
	"strings"
	"time"
)

// Scenarios.
const (
	scConnect = "connect"
	scEcho    = "echo"
	scRate    = "rate"
	scStorm   = "storm"
	scSlow    = "slow"
	scFanout  = "fanout"
)

var scenarios = []string{scConnect, scEcho, scRate, scStorm, scSlow, scFanout, scResume}

// Bounds a run must stay within unless --allow-huge is given. They stop a
// typo from opening a million sockets or sending for a day; a deliberate
// large run names the override.
const (
	hugeConns     = 100_000
	hugeRate      = 1_000_000
	hugeDuration  = time.Hour
	hugeSize      = 16 << 20
	hugeInflight  = 1024
	hugeRamp      = 200_000
	hugeProcs     = 64
	maxPerProcFDs = 19_800 // the machine's 20,000 minus the process's own
)

// config is one run. Fields are grouped by what they shape.
type config struct {
	scenario string

	// Where.
	urlFlag   string
	urlSet    bool
	targets   []target
	sourceIPs []netip.Addr

	// How much.
	conns     int
	duration  time.Duration
	ramp      int
	size      int
	rate      int
	inflight  int
	loops     int
	procs     int
	maxPend   int
	allowHuge bool

	// compression offers permessage-deflate and compresses (deflate_linux.go).
	compression bool

	// rampTimeout caps the ramp phase; 0 derives the cap from the count
	// and the rate (rampCap). The ramp ends earlier only when every
	// attempt has finished.
	rampTimeout time.Duration

	// Scenario details.
	handshakeTimeout time.Duration
	drainTimeout     time.Duration
	stormMode        string
	stormAfter       time.Duration
	backoffBase      time.Duration
	backoffMax       time.Duration
	retries          int
	slowShare        float64
	slowRate         int
	slowSize         int
	slowRcvBuf       int
	dropShare        float64
	resumeTo         string

	// jwtSecret, when set, logs every connection in as its own user
	// (token.go).
	jwtSecret string

	// Output.
	jsonFile  string
	htmlFile  string
	readyFile string
	quiet     bool

	// Set by the parent for a --procs child.
	child     int // 1-based child number; 0 when not a child
	childOf   int
	t0        int64 // parent's start, unix ns, to align timelines
	connBase  int   // first global connection index of this process
	connTotal int   // connections of the whole run, all processes
}

func newFlagSet(cfg *config, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.urlFlag, "url", "ws://127.0.0.1:8080/ws", "target URL(s), comma-separated; a port may be a range (ws://127.0.0.1:8080-8083/ws)")
	fs.Func("source-ips", "source addresses to bind before connect: list and ranges (127.0.0.1-127.0.0.20)", func(s string) error {
		ips, err := parseSourceIPs(s)
		cfg.sourceIPs = ips
		return err
	})
	fs.IntVar(&cfg.conns, "conns", 100, "connections")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "how long the measured phase lasts, after the ramp")
	fs.IntVar(&cfg.ramp, "ramp", 2000, "new connections per second")
	fs.IntVar(&cfg.size, "size", 64, "payload bytes per message (at least 8: the first 8 are a timestamp)")
	fs.IntVar(&cfg.rate, "rate", 1000, "rate, slow: total messages per second (open loop)")
	fs.IntVar(&cfg.inflight, "inflight", 1, "echo: messages in flight per connection (closed loop)")
	fs.IntVar(&cfg.loops, "loops", runtime.GOMAXPROCS(0), "event loops (goroutines) per process")
	fs.IntVar(&cfg.maxPend, "max-pending", 0, "at most this many attempts in connect or upgrade at once, per process (0: no limit); keeps a fast ramp within the server's listen backlog")
	fs.IntVar(&cfg.procs, "procs", 1, "child processes to spread connections over (each holds at most ~19,800)")
	fs.BoolVar(&cfg.compression, "compression", false, "offer permessage-deflate (no context takeover), require it, compress every message (JSON-like payload) and inflate the replies; the report adds payload bytes beside wire bytes")
	fs.BoolVar(&cfg.allowHuge, "allow-huge", false, fmt.Sprintf("allow more than %d connections, %d msg/s, %v, and other large values", hugeConns, hugeRate, hugeDuration))
	fs.DurationVar(&cfg.rampTimeout, "ramp-timeout", 0, "longest the ramp may take before the measured phase starts anyway (0: 10x conns/ramp, at least a minute more, at most an hour); the ramp goes on while the server is slower than --ramp")
	fs.DurationVar(&cfg.handshakeTimeout, "handshake-timeout", 10*time.Second, "connect plus upgrade deadline per attempt")
	fs.DurationVar(&cfg.drainTimeout, "drain", 3*time.Second, "after the measured phase, how long to wait for replies still in flight")
	fs.StringVar(&cfg.stormMode, "storm", "drop", "storm: drop (the client drops all connections at once) or server (wait for the server to close them, e.g. a drain with 1001)")
	fs.DurationVar(&cfg.stormAfter, "storm-after", 2*time.Second, "storm, drop mode: hold this long before dropping")
	fs.DurationVar(&cfg.backoffBase, "backoff", 100*time.Millisecond, "storm and --retries: first reconnect delay bound (full jitter, doubled per failed attempt)")
	fs.DurationVar(&cfg.backoffMax, "backoff-max", 5*time.Second, "storm and --retries: largest reconnect delay bound")
	fs.IntVar(&cfg.retries, "retries", 0, "during the ramp, try a failed attempt again up to this many times after --backoff, as a phone's client would; the report counts the retries and the connections that never came up")
	fs.Float64Var(&cfg.slowShare, "slow-share", 0.1, "slow: share of connections that stop reading")
	fs.IntVar(&cfg.slowRate, "slow-rate", 100, "slow: messages per second each slow connection sends")
	fs.IntVar(&cfg.slowSize, "slow-size", 16384, "slow: payload bytes of the slow connections' messages")
	fs.IntVar(&cfg.slowRcvBuf, "slow-rcvbuf", 4096, "slow: SO_RCVBUF of a slow connection, so its window fills quickly")
	fs.StringVar(&cfg.jwtSecret, "jwt-secret", "", "log each connection in as user u<index> with an HS256 token signed with this secret (the gateways' --jwt-secret)")
	fs.Float64Var(&cfg.dropShare, "drop-share", 0.3, "resume: share of the clients whose TCP connection is cut (RST) after --storm-after")
	fs.StringVar(&cfg.resumeTo, "resume-to", "", "resume: the dropped clients reconnect to this host:port (another node of the cluster) instead")
	fs.StringVar(&cfg.jsonFile, "json", "", "write the report as JSON to this file")
	fs.StringVar(&cfg.htmlFile, "html", "", "write a self-contained HTML report to this file")
	fs.StringVar(&cfg.readyFile, "ready-file", "", "create this file once the ramp is over (for scripts that sample the server while connections are held)")
	fs.BoolVar(&cfg.quiet, "quiet", false, "no progress line even on a terminal")
	fs.IntVar(&cfg.child, "child", 0, "internal: child number under --procs")
	fs.IntVar(&cfg.childOf, "child-of", 0, "internal: number of children under --procs")
	fs.Int64Var(&cfg.t0, "t0", 0, "internal: parent start time, unix ns")
	fs.IntVar(&cfg.connBase, "conn-base", 0, "internal: first global connection index")
	fs.IntVar(&cfg.connTotal, "conn-total", 0, "internal: connections of the whole run")
	return fs
}

const usageHead = `usage: loadtest SCENARIO [flags]

Scenarios:
  connect  open --conns at --ramp per second, hold them --duration answering pings
  echo     closed loop: --inflight messages of --size bytes per connection
  rate     open loop: --rate messages per second in total, latency from the intended send time
  storm    hold, drop all (or let the server drain them), reconnect with jittered backoff
  slow     --slow-share of the connections stop reading; the rest run the rate scenario
  fanout   every connection subscribes; connection 0 publishes --rate messages per second
           (open loop) that a broadcast server sends to all; counts deliveries and losses
  resume   resumable clients (Go client, envelope) of a broadcast server; client 0 publishes
           --rate numbered messages per second; after --storm-after --drop-share of the
           others are cut (RST) and resume: counts missed, duplicated, replayed, time to resume

Flags:
`

// parseArgs parses "SCENARIO [flags]" into a checked config.
func parseArgs(args []string, stderr io.Writer) (*config, error) {
	cfg := &config{}
	fs := newFlagSet(cfg, stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageHead)
		fs.PrintDefaults()
	}
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fs.Usage()
			return nil, flag.ErrHelp
		}
		fs.Usage()
		return nil, errors.New("loadtest: missing scenario")
	}
	cfg.scenario = args[0]
	if err := fs.Parse(args[1:]); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("loadtest: unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "url" {
			cfg.urlSet = true
		}
	})
	if err := cfg.check(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// check validates cfg and resolves its targets.
func (c *config) check() error {
	known := false
	for _, s := range scenarios {
		known = known || s == c.scenario
	}
	if !known {
		return fmt.Errorf("loadtest: unknown scenario %q (want one of %s)", c.scenario, strings.Join(scenarios, ", "))
	}
	ts, err := parseTargets(c.urlFlag)
	if err != nil {
		return err
	}
	c.targets = ts
	// The default target is loopback; anything else must be asked for with
	// --url, and a loopback target is only reached from loopback sources.
	for _, t := range ts {
		if !c.urlSet && !t.addr.Addr().IsLoopback() {
			return fmt.Errorf("loadtest: %s is not a loopback address: pass it with --url", t.url)
		}
	}
	for _, ip := range c.sourceIPs {
		if ts[0].addr.Addr().IsLoopback() && !ip.IsLoopback() {
			return fmt.Errorf("loadtest: source %v cannot reach loopback target %s", ip, ts[0].url)
		}
		if ip.Is4() != ts[0].addr.Addr().Is4() {
			return fmt.Errorf("loadtest: source %v and target %s are of different families", ip, ts[0].url)
		}
	}

	type bound struct {
		name     string
		v, lo, h int64
	}
	for _, b := range []bound{
		{"--conns", int64(c.conns), 1, hugeConns},
		{"--rate", int64(c.rate), 1, hugeRate},
		{"--duration", int64(c.duration), int64(100 * time.Millisecond), int64(hugeDuration)},
		{"--size", int64(c.size), 8, hugeSize},
		{"--inflight", int64(c.inflight), 1, hugeInflight},
		{"--ramp", int64(c.ramp), 1, hugeRamp},
		{"--procs", int64(c.procs), 1, hugeProcs},
		{"--loops", int64(c.loops), 1, 256},
		{"--slow-rate", int64(c.slowRate), 1, 100_000},
		{"--slow-size", int64(c.slowSize), 8, hugeSize},
	} {
		if b.v < b.lo {
			return fmt.Errorf("loadtest: %s must be at least %d", b.name, b.lo)
		}
		if b.v > b.h && !c.allowHuge {
			return fmt.Errorf("loadtest: %s %d is over %d: pass --allow-huge if you mean it", b.name, b.v, b.h)
		}
	}
	if c.slowShare < 0 || c.slowShare >= 1 {
		return errors.New("loadtest: --slow-share must be in [0, 1)")
	}
	if c.stormMode != "drop" && c.stormMode != "server" {
		return fmt.Errorf("loadtest: --storm must be drop or server, not %q", c.stormMode)
	}
	if c.retries < 0 || c.retries > 255 {
		return errors.New("loadtest: --retries must be in 0..255")
	}
	if c.backoffBase <= 0 || c.backoffMax < c.backoffBase {
		return errors.New("loadtest: need 0 < --backoff <= --backoff-max")
	}
	if c.rampTimeout < 0 || c.rampTimeout > hugeDuration && !c.allowHuge {
		return fmt.Errorf("loadtest: --ramp-timeout must be in [0, %v] (or pass --allow-huge)", hugeDuration)
	}
	if c.handshakeTimeout <= 0 || c.drainTimeout < 0 {
		return errors.New("loadtest: --handshake-timeout must be positive and --drain not negative")
	}
	if c.procs > c.conns {
		return errors.New("loadtest: --procs must not exceed --conns")
	}
	if c.child == 0 {
		c.connBase, c.connTotal = 0, c.conns
	}
	// One process holds at most ~19,800 sockets: past that, --procs.
	if per := (c.conns + c.procs - 1) / c.procs; per > maxPerProcFDs {
		return fmt.Errorf("loadtest: %d connections per process is over %d descriptors: raise --procs to at least %d",
			per, maxPerProcFDs, (c.conns+maxPerProcFDs-1)/maxPerProcFDs)
	}
	// Each source address gives at most the ephemeral range per target.
	perPair := c.conns / max(1, len(c.sourceIPs)*len(c.targets))
	if perPair > 28000 {
		return fmt.Errorf("loadtest: %d connections per source address and target exceed the ephemeral port range: add --source-ips or target ports", perPair)
	}
	return nil
}

// rampCap is the longest the ramp may last: --ramp-timeout, or ten times
// the nominal ramp (at least a minute more than it), within an hour unless
// --allow-huge. A server slower than --ramp stretches the ramp up to
// this; only a stalled run meets it.
func (c *config) rampCap() time.Duration {
	if c.rampTimeout > 0 {
		return c.rampTimeout
	}
	nominal := time.Duration(float64(c.conns) / float64(c.ramp) * float64(time.Second))
	d := max(10*nominal, nominal+time.Minute) + c.handshakeTimeout
	if !c.allowHuge {
		d = min(d, hugeDuration)
	}
	return d
}

// childArgs returns the arguments for child i (1-based) of n: the parent's
// own flags with the connection count and rates cut to the child's share.
func (c *config) childArgs(orig []string, i, n int, t0 int64) []string {
	base := c.conns * (i - 1) / n
	next := c.conns * i / n
	args := []string{c.scenario}
	skip := map[string]bool{"source-ips": true, "max-pending": true, "procs": true, "conns": true, "rate": true, "ramp": true, "json": true, "html": true, "ready-file": true}
	fs := newFlagSet(&config{}, io.Discard)
	_ = fs.Parse(orig[1:])
	fs.Visit(func(f *flag.Flag) {
		if !skip[f.Name] {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	if len(c.sourceIPs) > 0 {
		// Re-render: fs.Func values do not print themselves.
		s := make([]string, len(c.sourceIPs))
		for j, ip := range c.sourceIPs {
			s[j] = ip.String()
		}
		args = append(args, "--source-ips="+strings.Join(s, ","))
	}
	share := func(total int) int { return max(1, (total*i)/n-(total*(i-1))/n) }
	rate := share(c.rate)
	if c.scenario == scFanout {
		rate = c.rate // one publisher, in the child that holds connection 0
	}
	args = append(args,
		fmt.Sprintf("--conns=%d", next-base),
		fmt.Sprintf("--rate=%d", rate),
		fmt.Sprintf("--ramp=%d", share(c.ramp)),
		fmt.Sprintf("--max-pending=%d", (c.maxPend+n-1)/n),
		"--quiet",
		fmt.Sprintf("--child=%d", i),
		fmt.Sprintf("--child-of=%d", n),
		fmt.Sprintf("--t0=%d", t0),
		fmt.Sprintf("--conn-base=%d", base),
		fmt.Sprintf("--conn-total=%d", c.conns),
	)
	return args
}
