// Command cluster measures a cluster of gateways on NATS (docs/cluster.md)
// with real processes: Debian's nats-server, wsgate gateway processes and
// real clients (gorilla for latency, loadtest for many connections).
//
//	go run ./bench/cluster latency --pushes 2000          # push through NATS vs local, 1 KiB
//	go run ./bench/cluster fanout --gateways 4 --subs 20000 --publishes 100
//	go run ./bench/cluster memory --conns 10000           # per connection, cluster vs not
//
// --bin names a directory with wsgate and loadtest (built into a temporary
// one if empty). Figures are ratios of runs made side by side on one
// machine; a shared machine makes them noisy.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	binDir   = flag.String("bin", "", "directory with wsgate and loadtest (built if empty)")
	natsBin  = flag.String("nats-server", "nats-server", "nats-server binary")
	loops    = flag.Int("loops", 1, "event loops per gateway")
	verbose  = flag.Bool("v", false, "show the processes' output")
	procs    []*exec.Cmd
	workDir  string
	backend  string
	uniqueID atomic.Int64
)

func main() {
	if len(os.Args) < 2 {
		log.Fatal("usage: cluster latency|fanout|memory [flags]")
	}
	cmd := os.Args[1]
	fs := flag.CommandLine
	pushes := fs.Int("pushes", 2000, "latency: pushes per path")
	size := fs.Int("size", 1024, "payload bytes")
	gateways := fs.Int("gateways", 4, "fanout: gateway processes")
	subs := fs.Int("subs", 20000, "fanout: subscribers, spread evenly")
	publishes := fs.Int("publishes", 100, "fanout: publishes")
	clientProcs := fs.Int("procs", 2, "fanout, memory: loadtest processes")
	conns := fs.Int("conns", 10000, "memory: connections")
	if err := fs.Parse(os.Args[2:]); err != nil {
		os.Exit(2)
	}
	var err error
	if workDir, err = os.MkdirTemp("", "wsgate-bench-cluster"); err != nil {
		log.Fatal(err)
	}
	defer cleanup()
	build()
	backend = startBackend()
	switch cmd {
	case "latency":
		latency(*pushes, *size)
	case "fanout":
		fanout(*gateways, *subs, *publishes, *size, *clientProcs)
	case "memory":
		memory(*conns, *clientProcs)
	default:
		log.Fatalf("unknown measurement %q", cmd)
	}
}

func cleanup() {
	for _, p := range procs {
		_ = p.Process.Signal(syscall.SIGKILL)
		_, _ = p.Process.Wait()
	}
	os.RemoveAll(workDir)
}

func fatal(err error) {
	cleanup()
	log.Fatal(err)
}

func build() {
	if *binDir != "" {
		return
	}
	*binDir = filepath.Join(workDir, "bin")
	for pkg, name := range map[string]string{"./cmd/gateway": "wsgate", "./loadtest": "loadtest"} {
		if out, err := exec.Command("go", "build", "-o", filepath.Join(*binDir, name), pkg).CombinedOutput(); err != nil {
			fatal(fmt.Errorf("go build %s: %v\n%s", pkg, err, out))
		}
	}
}

// startBackend serves the connect hook: user and topic from the query;
// user=unique gives each connection a user of its own.
func startBackend() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/connect" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		var ev struct {
			Query string `json:"query"`
		}
		json.Unmarshal(body, &ev)
		q, _ := url.ParseQuery(ev.Query)
		user := q.Get("user")
		switch user {
		case "none":
			user = ""
		case "unique":
			user = "u" + strconv.FormatInt(uniqueID.Add(1), 10)
		}
		json.NewEncoder(w).Encode(map[string]any{"user": user, "topics": q["topic"]})
	}))
	return "http://" + ln.Addr().String()
}

func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// gatewayEnv is added to the gateways' environment.
var gatewayEnv []string

func run(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	if strings.HasSuffix(name, "wsgate") {
		cmd.Env = append(os.Environ(), gatewayEnv...)
	}
	if *verbose {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		fatal(err)
	}
	procs = append(procs, cmd)
	return cmd
}

// startNATS runs nats-server with monitoring and returns its client URL
// and monitoring address.
func startNATS() (string, string) {
	addr, mon := freeAddr(), freeAddr()
	host, port, _ := net.SplitHostPort(addr)
	_, mport, _ := net.SplitHostPort(mon)
	conf := filepath.Join(workDir, "nats.conf")
	if err := os.WriteFile(conf, []byte("max_payload: 2MB\n"), 0o644); err != nil {
		fatal(err)
	}
	run(*natsBin, "-c", conf, "-a", host, "-p", port, "-m", mport)
	waitHTTP("http://" + mon + "/varz")
	return "nats://" + addr, mon
}

type gateway struct {
	cmd   *exec.Cmd
	addr  string
	admin string
}

// startGateway runs a gateway; nats "" makes it a single node.
func startGateway(nats, id string, extra ...string) gateway {
	g := gateway{addr: freeAddr(), admin: freeAddr()}
	args := []string{"--listen", g.addr, "--admin", g.admin, "--backend", backend, "--loops", strconv.Itoa(*loops),
		"--demo=false", "--ping-interval", "0", "--log-level", "warn", "--max-outbound", "64MiB"}
	if nats != "" {
		args = append(args, "--nats", nats, "--node-id", id, "--cluster-name", "bench")
	}
	g.cmd = run(filepath.Join(*binDir, "wsgate"), append(args, extra...)...)
	waitHTTP("http://" + g.addr + "/healthz")
	return g
}

func waitHTTP(u string) {
	for i := 0; i < 400; i++ {
		if resp, err := http.Get(u); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	fatal(errors.New("no answer from " + u))
}

func getJSON(u string, v any) {
	resp, err := http.Get(u)
	if err != nil {
		fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		fatal(fmt.Errorf("%s: %v", u, err))
	}
}

func post(u string, body []byte) map[string]any {
	resp, err := http.Post(u, "application/octet-stream", strings.NewReader(string(body)))
	if err != nil {
		fatal(err)
	}
	defer resp.Body.Close()
	var v map[string]any
	json.NewDecoder(resp.Body).Decode(&v)
	if resp.StatusCode != 202 {
		fatal(fmt.Errorf("POST %s: %d %v", u, resp.StatusCode, v))
	}
	return v
}

// clusterView is what the bench reads of GET /v1/cluster.
type clusterView struct {
	Connected bool `json:"connected"`
	Nodes     []struct {
		Connections int64 `json:"connections"`
	} `json:"nodes"`
	Stats struct {
		Pending   int   `json:"pending"`
		Published int64 `json:"published"`
		Received  int64 `json:"received"`
	} `json:"stats"`
}

// settle waits until every gateway sees n nodes with conns connections
// in all and has applied its interest.
func settle(gws []gateway, n int, conns int64) {
	for i := 0; i < 2400; i++ {
		ok, all := true, true
		for _, g := range gws {
			var v clusterView
			getJSON("http://"+g.admin+"/v1/cluster", &v)
			var total int64
			for _, nd := range v.Nodes {
				total += nd.Connections
			}
			ok = ok && v.Connected && len(v.Nodes) == n && v.Stats.Pending == 0
			all = all && total == conns
		}
		// A few connects may fail under a fast ramp (loadtest connect does
		// not retry them): after 10 s, go on with those that made it.
		if ok && (all || i > 100) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	fatal(errors.New("the cluster did not settle"))
}

// cpuTicks returns the user and system clock ticks of a process.
func cpuTicks(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

var rssRE = regexp.MustCompile(`VmRSS:\s+(\d+) kB`)

func rssKB(pid int) int64 {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	m := rssRE.FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

// heapInuse reads go_memstats_heap_inuse_bytes from a gateway's /metrics.
func heapInuse(g gateway) int64 {
	resp, err := http.Get("http://" + g.admin + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^go_memstats_heap_inuse_bytes (\S+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int64(f)
}

func percentile(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
