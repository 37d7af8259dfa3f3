//go:build linux

package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
)

// Tests of the phases' ends: a ramp that the server cannot keep up with, a
// mass close the server answers slowly, and --procs children that hold
// until all have ramped. They use servers in this process whose slowness
// is set by the test: one upgrade, or one close answer, at a time, each
// taking a fixed delay, so the server's rate is known whatever the machine
// does (it can only be slower).

// slowServer upgrades one connection at a time, each after upgradeDelay,
// echoes data frames, answers pings, and answers close frames one at a
// time, each after closeDelay.
type slowServer struct {
	url          string
	upgradeDelay time.Duration
	closeDelay   time.Duration
	upMu         sync.Mutex
	closeMu      sync.Mutex
	stop         chan struct{} // closed at cleanup: cuts every delay short
}

func (s *slowServer) wait(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.stop:
	}
}

func startSlowServer(t *testing.T, upgradeDelay, closeDelay time.Duration) *slowServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &slowServer{url: "ws://" + ln.Addr().String() + "/ws", upgradeDelay: upgradeDelay, closeDelay: closeDelay, stop: make(chan struct{})}
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	var wg sync.WaitGroup
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.upMu.Lock()
		s.wait(s.upgradeDelay)
		c, _, _, err := ws.UpgradeHTTP(r, w)
		s.upMu.Unlock()
		if err != nil {
			return
		}
		mu.Lock()
		conns[c] = true
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				mu.Lock()
				delete(conns, c)
				mu.Unlock()
				c.Close()
			}()
			s.serve(c)
		}()
	})}
	go srv.Serve(ln)
	t.Cleanup(func() {
		close(s.stop)
		srv.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

// readFrame reads one client frame of at most 64 KiB and unmasks it.
func readFrame(c net.Conn) (ws.Frame, error) {
	h, err := ws.ReadHeader(c)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > 64<<10 {
		return ws.Frame{}, ws.ErrProtocolControlPayloadOverflow
	}
	f := ws.Frame{Header: h, Payload: make([]byte, h.Length)}
	if _, err := io.ReadFull(c, f.Payload); err != nil {
		return ws.Frame{}, err
	}
	return ws.UnmaskFrameInPlace(f), nil
}

func (s *slowServer) serve(c net.Conn) {
	for {
		f, err := readFrame(c)
		if err != nil {
			return
		}
		switch f.Header.OpCode {
		case ws.OpPing:
			err = ws.WriteFrame(c, ws.NewPongFrame(f.Payload))
		case ws.OpPong:
		case ws.OpClose:
			s.closeMu.Lock()
			s.wait(s.closeDelay)
			_ = ws.WriteFrame(c, ws.NewCloseFrame(f.Payload))
			s.closeMu.Unlock()
			return
		default:
			err = ws.WriteFrame(c, ws.NewFrame(f.Header.OpCode, f.Header.Fin, f.Payload))
		}
		if err != nil {
			return
		}
	}
}

// TestRampWaitsForASlowServer asks for 100,000 upgrades a second from a
// server that completes one every 5 ms. The old ramp ended at a deadline
// computed from the asked rate (here about 1.2 s), before its target; now
// it goes on until every attempt has finished.
func TestRampWaitsForASlowServer(t *testing.T) {
	s := startSlowServer(t, 5*time.Millisecond, 0)
	const n = 400 // at least 2 s at 200 upgrades/s
	rep := runScenario(t, "connect", "--url", s.url, "--conns", itoa(n), "--ramp", "100000", "--max-pending", "8",
		"--handshake-timeout", "200ms", "--duration", "200ms")
	c := rep.Connections
	if c.Attempted != n || c.Established != n || c.Failed != 0 {
		t.Errorf("attempted %d, established %d, failed %d; want %d, %d, 0 (%v)", c.Attempted, c.Established, c.Failed, n, n, rep.Errors)
	}
	if rep.Ramp.End != rampComplete || rep.Ramp.Upgrades != n || rep.Ramp.TargetPerSec != 100000 {
		t.Errorf("ramp %+v, want complete with %d upgrades", rep.Ramp, n)
	}
}

// TestRampTimeout caps the same slow ramp with --ramp-timeout: the ramp
// ends with "timeout" and the attempts not made are not made.
func TestRampTimeout(t *testing.T) {
	s := startSlowServer(t, 20*time.Millisecond, 0)
	const n = 400 // at least 8 s at 50 upgrades/s
	rep := runScenario(t, "connect", "--url", s.url, "--conns", itoa(n), "--ramp", "100000", "--max-pending", "4",
		"--ramp-timeout", "300ms", "--duration", "100ms")
	if rep.Ramp.End != rampTimeout {
		t.Errorf("ramp ended %q, want %q (%+v)", rep.Ramp.End, rampTimeout, rep.Ramp)
	}
	if rep.Connections.Attempted >= n {
		t.Errorf("attempted %d of %d after a 300ms ramp timeout at 50 upgrades/s", rep.Connections.Attempted, n)
	}
}

// TestMassCloseSlowAnswers closes 2,400 connections at once against a
// server that answers one close every millisecond: the last answers come
// 2.4 s or more after our close frames. A fixed 2 s wait called a third of them
// unanswered; the wait now goes on while answers keep coming, up to a cap
// scaled to the count.
func TestMassCloseSlowAnswers(t *testing.T) {
	s := startSlowServer(t, 0, time.Millisecond)
	const n = 2400
	rep := runScenario(t, "connect", "--url", s.url, "--conns", itoa(n), "--ramp", "5000", "--duration", "200ms",
		"--source-ips", "127.0.0.1-127.0.0.2")
	cl := rep.Close
	if cl.Sent != n || cl.Answered != n || cl.Unanswered != 0 {
		t.Errorf("closes: sent %d, answered %d, unanswered %d; want %d, %d, 0", cl.Sent, cl.Answered, cl.Unanswered, n, n)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors: %v", rep.Errors)
	}
	if cl.AnswerMS.Count != n {
		t.Errorf("answer time histogram holds %d values, want %d", cl.AnswerMS.Count, n)
	}
	t.Logf("answer ms: %+v", cl.AnswerMS)
}

// TestMassCloseUnanswered is the other side: a server that never answers
// (it holds every close answer behind one that sleeps past the run) is
// reported as unanswered closes, apart from the errors.
func TestMassCloseUnanswered(t *testing.T) {
	s := startSlowServer(t, 0, time.Hour) // cut short at cleanup
	const n = 20
	rep := runScenario(t, "connect", "--url", s.url, "--conns", itoa(n), "--ramp", "400", "--duration", "200ms")
	cl := rep.Close
	if cl.Sent != n || cl.Unanswered != n || cl.Answered != 0 {
		t.Errorf("closes: sent %d, answered %d, unanswered %d; want %d, 0, %d", cl.Sent, cl.Answered, cl.Unanswered, n, n)
	}
	if len(rep.Errors) != 0 {
		t.Errorf("errors: %v (unanswered closes are not errors)", rep.Errors)
	}
}

// TestProcsHoldTogether gives the two children ramps of different lengths
// (--ramp 3 splits into 1/s and 2/s; four connections each over two loops:
// the last opens at 2 s and at 1 s): the faster child must hold its
// connections until the slower one has ramped, so all eight are open at
// once. Before the hold, the faster child closed its own after --duration.
// (Echo, not connect: a held connect run samples once a second, which
// would blur the timing.)
func TestProcsHoldTogether(t *testing.T) {
	s := startServer(t)
	rep := runScenario(t, "echo", "--procs", "2", "--url", s.url, "--conns", "8", "--ramp", "3", "--duration", "200ms")
	checkClean(t, rep)
	if rep.Connections.OpenMax != 8 {
		t.Errorf("open max %d, want 8: a child closed before the other had ramped", rep.Connections.OpenMax)
	}
	if rep.Ramp.End != rampComplete {
		t.Errorf("ramp ended %q", rep.Ramp.End)
	}
}

// TestInterruptedCloseStaysBounded interrupts a held connect run (as
// SIGINT does) and lets its mass close last about a second against a
// server that answers one close every 5 ms. The runner used to select on
// the done context on every later turn, which never waits: it spun
// through drain and close appending a sample per turn (27 KiB per
// connection at 15,000, and the --procs parent hung on the children's
// oversized result lines). Every turn now waits for the ticker, so the
// samples are bounded by the run's length in ticks, whatever the
// machine's speed.
func TestInterruptedCloseStaysBounded(t *testing.T) {
	s := startSlowServer(t, 0, 5*time.Millisecond)
	const n = 200
	cfg, err := parseArgs([]string{"connect", "--url", s.url, "--conns", itoa(n), "--ramp", "5000", "--loops", "2",
		"--duration", "1h", "--quiet"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r := &runner{cfg: cfg, onSample: func(ph int32, _ int64, _ [nCounters]int64) {
		if ph == phaseSteady {
			cancel() // the interrupt, once every connection is held
		}
	}}
	start := time.Now()
	res, err := r.run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if got := res.Counts["close_answered"]; got != n {
		t.Errorf("%d closes answered, want %d (%v)", got, n, res.Errors)
	}
	// One sample per tick, plus the turns that end ramp, hold and the
	// measured phase at once and the turns that change the ticker.
	if limit := int(took/sampleEvery) + 10; len(res.Samples) > limit {
		t.Errorf("%d samples over a %v run, want at most %d (one per %v tick)", len(res.Samples), took, limit, sampleEvery)
	}
	t.Logf("%d samples in %v", len(res.Samples), took)
}

// childBigLineEnv makes a --procs child of the test binary start with a
// progress line over the parent's 64 MiB line limit (TestMain).
const childBigLineEnv = "WSGATE_LOADTEST_TEST_BIG_LINE"

func writeBigLine(w io.Writer) {
	b := make([]byte, 65<<20)
	for i := range b {
		b[i] = 'x'
	}
	_, _ = io.WriteString(w, "progress ")
	_, _ = w.Write(b)
	_, _ = io.WriteString(w, "\n")
}

// TestProcsChildLineOverLimit: a child whose output has a line over the
// parent's limit (as the result lines of the spinning runner had) must
// not hang the run. The parent stopped reading at the long line and then
// waited for the child, which blocked for ever writing to the full pipe;
// now it reads the child's output to the end and reports the child as
// failed.
func TestProcsChildLineOverLimit(t *testing.T) {
	s := startServer(t)
	t.Setenv(childBigLineEnv, "1")
	done := make(chan int, 1)
	var errb bytes.Buffer
	args := []string{"connect", "--procs", "2", "--url", s.url, "--conns", "4", "--ramp", "100", "--duration", "200ms"}
	go func() { done <- realMain(args, io.Discard, &errb) }()
	select {
	case code := <-done:
		if code != 1 {
			t.Errorf("exit %d, want 1 (no child's result could be read)", code)
		}
		if !strings.Contains(errb.String(), "token too long") {
			t.Errorf("the error does not say why: %q", errb.String())
		}
	case <-time.After(2 * time.Minute): // generous: the run itself takes about a second
		t.Fatal("the parent hung on a child's line over its limit")
	}
}
