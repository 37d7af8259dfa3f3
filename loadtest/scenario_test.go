package main

import (
	"testing"
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
	rep := runScenario(t, "rate", "--url", s.url, "--conns", "20", "--rate", "500", "--size", "64", "--duration", "1s")
	checkClean(t, rep)
	if rep.Sent != rep.Received {
		t.Errorf("sent %d, received %d", rep.Sent, rep.Received)
	}
	// An open loop sends on schedule, whatever the server does: the count
	// is about the rate times the measured time (loose: loops see phase
	// changes up to 50 ms late).
	if want := int64(500 * rep.SteadySec); rep.Sent < want/2 || rep.Sent > want*3/2 {
		t.Errorf("sent %d in %.2fs at 500/s, want about %d", rep.Sent, rep.SteadySec, want)
	}
}
