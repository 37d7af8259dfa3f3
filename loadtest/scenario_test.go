//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Scenario tests: tens of connections for a second or two each, against the
// real gateway when the module has cmd/gateway. They assert counts, never
// times: the machine is shared and noisy.

func checkClean(t *testing.T, rep *Report) {
	t.Helper()
	c := rep.Connections
	if c.Established != c.Attempted || c.Failed != 0 {
		t.Errorf("connections: attempted %d, established %d, failed %d", c.Attempted, c.Established, c.Failed)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
	if c.ClosedByServer != 0 {
		t.Errorf("closed by server: %d (%v)", c.ClosedByServer, rep.CloseCodes)
	}
}

func TestConnect(t *testing.T) {
	s := startServer(t)
	rep := runScenario(t, "connect", "--url", s.url, "--conns", "40", "--ramp", "400", "--duration", "1s")
	checkClean(t, rep)
	if rep.Connections.Attempted != 40 || rep.Connections.OpenMax != 40 {
		t.Errorf("attempted %d, open max %d; want 40 and 40", rep.Connections.Attempted, rep.Connections.OpenMax)
	}
	if rep.ConnectMS.Count != 40 {
		t.Errorf("connect histogram holds %d values, want 40", rep.ConnectMS.Count)
	}
}

func TestEcho(t *testing.T) {
	s := startServer(t)
	rep := runScenario(t, "echo", "--url", s.url, "--conns", "20", "--inflight", "2", "--size", "512", "--duration", "1s")
	checkClean(t, rep)
	if rep.Sent == 0 || rep.Sent != rep.Received || rep.LostInFlight != 0 {
		t.Errorf("sent %d, received %d, lost %d", rep.Sent, rep.Received, rep.LostInFlight)
	}
	if rep.LatencyUS.Count != rep.Received {
		t.Errorf("latency histogram holds %d values for %d messages", rep.LatencyUS.Count, rep.Received)
	}
}

func TestRate(t *testing.T) {
	s := startServer(t)
	const rate, duration = 500, 1.0 // --rate, --duration in seconds
	rep := runScenario(t, "rate", "--url", s.url, "--conns", "20", "--rate", "500", "--size", "64", "--duration", "1s")
	checkClean(t, rep)
	if rep.Sent != rep.Received {
		t.Errorf("sent %d, received %d", rep.Sent, rep.Received)
	}
	// An open loop sends on schedule whatever the server does: message k
	// of each of the two loops is due at k/250 s into the measured phase,
	// and none is sent after --duration, so the count follows from the
	// flags alone (one message either way per loop for rounding), not
	// from the phase the report measured.
	if want := int64(rate * duration); rep.Sent < want-2 || rep.Sent > want+2 {
		t.Errorf("sent %d at %d/s for --duration %vs (the report's phase: %.3fs), want %d", rep.Sent, rate, duration, rep.SteadySec, want)
	}
}

func TestStormDrop(t *testing.T) {
	s := startServer(t)
	rep := runScenario(t, "storm", "--url", s.url, "--conns", "40", "--ramp", "400",
		"--storm-after", "300ms", "--backoff", "200ms", "--duration", "20s")
	st := rep.Storm
	if st == nil {
		t.Fatal("no storm section in the report")
	}
	if st.Dropped != 40 || st.Recovered != 40 {
		t.Errorf("dropped %d, recovered %d; want 40 and 40", st.Dropped, st.Recovered)
	}
	if st.Back99MS < 0 || st.BackAllMS < 0 || st.PeakAcceptPerSec <= 0 {
		t.Errorf("back 99%% %v ms, all %v ms, peak %v/s: want all set", st.Back99MS, st.BackAllMS, st.PeakAcceptPerSec)
	}
	// Reconnects that failed are retried, so errors may appear; what must
	// hold is that every connection came back and none was closed on us.
	if rep.Connections.ClosedByServer != 0 {
		t.Errorf("closed by server: %d (%v)", rep.Connections.ClosedByServer, rep.CloseCodes)
	}
}

// TestStormServerDrain runs the server mode against the in-process server,
// which can close every connection with 1001 on demand.
func TestStormServerDrain(t *testing.T) {
	s := startEcho(t)
	ready := filepath.Join(t.TempDir(), "ready")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 400; i++ {
			if _, err := os.Stat(ready); err == nil {
				time.Sleep(200 * time.Millisecond)
				s.drain()
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
	}()
	rep := runScenario(t, "storm", "--storm", "server", "--url", s.url, "--conns", "30", "--ramp", "300",
		"--backoff", "100ms", "--duration", "3s", "--ready-file", ready)
	<-done
	st := rep.Storm
	if st.Dropped != 30 || st.Recovered != 30 {
		t.Errorf("dropped %d, recovered %d; want 30 and 30", st.Dropped, st.Recovered)
	}
	if got := rep.CloseCodes["1001"]; got != 30 {
		t.Errorf("closed with 1001: %d, want 30 (%v)", got, rep.CloseCodes)
	}
}

// TestStormGatewayRestart drains the real gateway with SIGTERM while
// connections are held, starts a new one on the same port, and follows the
// clients back: every connection must be closed with 1001 (going away) and
// come back.
func TestStormGatewayRestart(t *testing.T) {
	s := startServer(t)
	if s.kind != "wsgate" {
		t.Skip("needs cmd/gateway: the in-process server is covered by TestStormServerDrain")
	}
	port := s.url[len("ws://127.0.0.1:") : len(s.url)-len("/ws")]
	ready := filepath.Join(t.TempDir(), "ready")
	restarted := make(chan error, 1)
	var second *exec.Cmd
	go func() {
		for i := 0; i < 400; i++ {
			if _, err := os.Stat(ready); err == nil {
				stopGateway(s.cmd)
				p, _ := strconv.Atoi(port)
				cmd, _, err := launchGateway(p)
				second = cmd
				restarted <- err
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		restarted <- errors.New("the ramp never ended")
	}()
	rep := runScenario(t, "storm", "--storm", "server", "--url", s.url, "--conns", "30", "--ramp", "300",
		"--backoff", "100ms", "--backoff-max", "400ms", "--duration", "5s", "--ready-file", ready)
	if err := <-restarted; err != nil {
		t.Fatalf("restarting the gateway: %v", err)
	}
	t.Cleanup(func() { stopGateway(second) })
	st := rep.Storm
	if st.Dropped != 30 || st.Recovered != 30 {
		t.Errorf("dropped %d, recovered %d; want 30 and 30", st.Dropped, st.Recovered)
	}
	if got := rep.CloseCodes["1001"]; got != 30 {
		t.Errorf("closed with 1001: %d, want 30 (%v)", got, rep.CloseCodes)
	}
	if st.Back99MS < 0 {
		t.Errorf("99%% never came back: %+v", st)
	}
}

// boundFlag matches a gateway flag that bounds what a connection may leave
// unsent; without one the server cannot close a client that stops reading.
var boundFlag = regexp.MustCompile(`(?i)-{1,2}(max-?)?(outbound|write-?buffer|send-?(buffer|queue)|pending)`)

func TestSlow(t *testing.T) {
	s := startServer(t)
	// With a bound, the run ends as soon as the server has closed every
	// slow connection; the duration is only an upper limit, generous for
	// a noisy machine. Without one, two seconds show the fast ones are
	// unharmed.
	bounded := s.kind == "wsgate" && boundFlag.MatchString(s.help)
	duration := "2s"
	if bounded {
		duration = "30s"
	}
	rep := runScenario(t, "slow", "--url", s.url, "--conns", "20", "--slow-share", "0.2", "--rate", "200",
		"--slow-rate", "200", "--slow-size", "65536", "--duration", duration)
	sl := rep.Slow
	if sl == nil || sl.Conns != 4 {
		t.Fatalf("slow section %+v, want 4 slow connections", sl)
	}
	t.Run("fast ones unharmed", func(t *testing.T) {
		if rep.Sent == 0 || rep.Sent != rep.Received {
			t.Errorf("fast: sent %d, received %d", rep.Sent, rep.Received)
		}
		if n := rep.Connections.ClosedByServer - sl.ClosedByServer; n != 0 {
			t.Errorf("%d fast connections closed by the server (%v)", n, rep.CloseCodes)
		}
	})
	t.Run("slow ones closed by server", func(t *testing.T) {
		if sl.ClosedByServer == sl.Conns {
			t.Logf("slow ones closed: %v", sl.CloseCodes)
			return
		}
		if s.kind != "wsgate" {
			t.Skipf("the %s server has no outbound bound: it blocks on the slow readers and never closes them (%d of %d closed)",
				s.kind, sl.ClosedByServer, sl.Conns)
		}
		if !bounded {
			t.Skipf("wsgate has no outbound bound yet (no such flag in --help): %d of %d slow connections closed",
				sl.ClosedByServer, sl.Conns)
		}
		t.Errorf("wsgate has an outbound bound but closed %d of %d slow connections (%v)", sl.ClosedByServer, sl.Conns, sl.CloseCodes)
	})
}

func TestProcs(t *testing.T) {
	s := startServer(t)
	rep := runScenario(t, "echo", "--procs", "2", "--url", s.url, "--conns", "21", "--duration", "1s")
	checkClean(t, rep)
	if rep.Procs != 2 || rep.Connections.Attempted != 21 || rep.Connections.OpenMax != 21 {
		t.Errorf("procs %d, attempted %d, open max %d; want 2, 21, 21", rep.Procs, rep.Connections.Attempted, rep.Connections.OpenMax)
	}
	if rep.Sent == 0 || rep.Sent != rep.Received || rep.LatencyUS.Count != rep.Received {
		t.Errorf("sent %d, received %d, latency count %d", rep.Sent, rep.Received, rep.LatencyUS.Count)
	}
}

func TestHTMLReport(t *testing.T) {
	s := startServer(t)
	page := filepath.Join(t.TempDir(), "report.html")
	rep := runScenario(t, "echo", "--url", s.url, "--conns", "10", "--duration", "1s", "--html", page)
	checkClean(t, rep)
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	html := string(b)
	if n := strings.Count(html, "<svg"); n != 3 {
		t.Errorf("%d charts, want 3 (latency, connect, over time)", n)
	}
	// Self-contained: nothing to fetch on an offline machine.
	for _, bad := range []string{"http://", "https://", "<script src", "<link"} {
		if strings.Contains(html, bad) {
			t.Errorf("page refers to %q", bad)
		}
	}
	if keep := os.Getenv("LOADTEST_KEEP_HTML"); keep != "" {
		_ = os.WriteFile(keep, b, 0o644)
	}
}

// TestConnectAnswersPings holds connections through several of the
// gateway's ping rounds: a client that did not answer would be dropped
// after the pong timeout.
func TestConnectAnswersPings(t *testing.T) {
	s := startServer(t, "--ping-interval", "200ms", "--pong-timeout", "300ms", "--timer-tick", "50ms")
	if s.kind != "wsgate" {
		t.Skip("the in-process server sends no pings")
	}
	rep := runScenario(t, "connect", "--url", s.url, "--conns", "20", "--ramp", "400", "--duration", "2s")
	checkClean(t, rep)
	if rep.Connections.OpenMax != 20 {
		t.Errorf("open max %d, want 20", rep.Connections.OpenMax)
	}
}
