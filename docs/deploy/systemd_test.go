package deploy

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

const (
	unitFile   = "systemd/wsgate.service"
	sysctlFile = "systemd/99-wsgate.conf"
)

// unit is a parsed systemd unit: section → key → values in order.
type unit map[string]map[string][]string

func (u unit) get(t *testing.T, section, key string) string {
	t.Helper()
	v := u[section][key]
	if len(v) == 0 {
		t.Fatalf("%s: [%s] has no %s", unitFile, section, key)
	}
	return v[len(v)-1]
}

func parseUnit(t *testing.T) unit {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || line[0] == '#' || line[0] == ';':
		case line[0] == '[' && line[len(line)-1] == ']':
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s: bad line %q", unitFile, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	return u
}

// parseSysctl reads key = value lines.
func parseSysctl(t *testing.T) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(sysctlFile)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(raw), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: bad line %q", sysctlFile, line)
		}
		out[strings.TrimSpace(k)] = strings.Join(strings.Fields(v), " ")
	}
	return out
}

func atoi(t *testing.T, what, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%s: %q is not a number", what, s)
	}
	return n
}

// The unit drains on SIGTERM within its stop timeout, restarts on
// failure, allows a million descriptors, and its command line is one
// the gateway accepts.
func TestSystemdUnit(t *testing.T) {
	u := parseUnit(t)
	cmdline := strings.Fields(u.get(t, "Service", "ExecStart"))
	if cmdline[0] != "/usr/local/bin/wsgate" {
		t.Errorf("ExecStart runs %s; the README installs /usr/local/bin/wsgate", cmdline[0])
	}
	eff := effective(t, cmdline[1:], nil)
	window, grace := duration(t, eff, "drain_window"), duration(t, eff, "drain_grace")
	stop, err := time.ParseDuration(u.get(t, "Service", "TimeoutStopSec"))
	if err != nil {
		t.Fatalf("TimeoutStopSec: %v", err)
	}
	if need := window + grace + shutdownBound; stop <= need {
		t.Errorf("TimeoutStopSec=%v: a drain takes up to %v (window %v + grace %v + shutdown %v)", stop, need, window, grace, shutdownBound)
	}
	if sig := u.get(t, "Service", "KillSignal"); sig != "SIGTERM" {
		t.Errorf("KillSignal=%s: the gateway drains on SIGTERM", sig)
	}
	if r := u.get(t, "Service", "Restart"); r != "on-failure" && r != "always" {
		t.Errorf("Restart=%s", r)
	}
	nofile := atoi(t, "LimitNOFILE", u.get(t, "Service", "LimitNOFILE"))
	if nofile < 1_040_000 {
		t.Errorf("LimitNOFILE=%d: a million connections need a descriptor each, and some to spare", nofile)
	}
	sys := parseSysctl(t)
	nrOpen := atoi(t, "fs.nr_open", sys["fs.nr_open"])
	if nofile > nrOpen {
		t.Errorf("LimitNOFILE=%d is over fs.nr_open=%d: the service could not start", nofile, nrOpen)
	}
	if fileMax := atoi(t, "fs.file-max", sys["fs.file-max"]); fileMax < nrOpen {
		t.Errorf("fs.file-max=%d is under fs.nr_open=%d", fileMax, nrOpen)
	}
	// The admin address the unit gives is loopback (no token needed) or
	// the environment file must carry the token: the gateway refuses to
	// start otherwise, which --print-config above has already checked.
	if eff["admin"] == "" {
		t.Error("the unit turns the admin address off: no /metrics to scrape")
	}
}

// Every sysctl key exists in this kernel, and the values are coherent.
func TestSysctlSettings(t *testing.T) {
	sys := parseSysctl(t)
	for _, want := range []string{"fs.file-max", "fs.nr_open", "net.ipv4.ip_local_port_range", "net.core.somaxconn",
		"net.ipv4.tcp_max_syn_backlog", "net.netfilter.nf_conntrack_max", "net.ipv4.tcp_mem"} {
		if sys[want] == "" {
			t.Errorf("%s: no %s", sysctlFile, want)
		}
	}
	for k := range sys {
		path := filepath.Join("/proc/sys", strings.ReplaceAll(k, ".", "/"))
		if _, err := os.Stat(path); err != nil {
			if strings.HasPrefix(k, "net.netfilter.") {
				if _, err := os.Stat("/proc/sys/net/netfilter"); err != nil {
					t.Logf("%s: nf_conntrack is not loaded here: not checked", k)
					continue
				}
			}
			t.Errorf("%s: %s is not a kernel setting (%v)", sysctlFile, k, err)
		}
	}
	ports := strings.Fields(sys["net.ipv4.ip_local_port_range"])
	if len(ports) != 2 || atoi(t, "port", ports[0]) >= atoi(t, "port", ports[1]) || atoi(t, "port", ports[1]) > 65535 {
		t.Errorf("ip_local_port_range %q", sys["net.ipv4.ip_local_port_range"])
	}
	mem := strings.Fields(sys["net.ipv4.tcp_mem"])
	if len(mem) != 3 {
		t.Fatalf("tcp_mem %q: want min pressure max", sys["net.ipv4.tcp_mem"])
	}
	lo, mid, hi := atoi(t, "tcp_mem", mem[0]), atoi(t, "tcp_mem", mem[1]), atoi(t, "tcp_mem", mem[2])
	if lo >= mid || mid >= hi {
		t.Errorf("tcp_mem %q is not increasing", sys["net.ipv4.tcp_mem"])
	}
	// A 1 KiB message in flight on each of a million sockets (about
	// 2 KiB with its skb) fits under the pressure threshold.
	if need := int64(1_000_000 * 2048 / 4096); mid < need {
		t.Errorf("tcp_mem pressure at %d pages, under the %d a million in-flight messages need", mid, need)
	}
	if n := atoi(t, "somaxconn", sys["net.core.somaxconn"]); n < 4096 {
		t.Errorf("somaxconn %d", n)
	}
}

// systemd-analyze verify finds nothing to say about the unit (it exits 0
// on most problems, so any output fails).
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze := tool(t, "systemd-analyze")
	raw, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's program exists: point it at the
	// binary the tests built.
	raw = bytes.ReplaceAll(raw, []byte("/usr/local/bin/wsgate"), []byte(binary(t)))
	path := filepath.Join(t.TempDir(), "wsgate.service")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}
