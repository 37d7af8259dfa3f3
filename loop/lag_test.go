package loop

import (
	"bufio"
	"net"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/testkit/raw"
)

func TestLagTrackerStalls(t *testing.T) {
	const tick = 10
	var lt lagTracker
	if late := lt.observe(100, tick); late != 0 {
		t.Fatalf("first tick recorded %d", late)
	}
	if late := lt.observe(115, tick); late != 0 { // 5 late: jitter
		t.Fatalf("jitter recorded as a stall: %d", late)
	}
	if late := lt.observe(1125, tick); late != 1000 {
		t.Fatalf("stall recorded as %d, want 1000", late)
	}
	if got := lt.since(115); got != 1000 {
		t.Fatalf("since before the stall: %d, want 1000", got)
	}
	if got := lt.since(1125); got != 0 {
		t.Fatalf("since after the stall: %d, want 0", got)
	}
	lt.idle()
	if late := lt.observe(9000, tick); late != 0 {
		t.Fatalf("a tick after an idle gap recorded %d", late)
	}
	// A stall before the first tick counts from when ticks were wanted.
	var first lagTracker
	first.want(500)
	first.want(700) // already wanting: the reference stays
	if late := first.observe(2510, tick); late != 2000 {
		t.Fatalf("stall before the first tick recorded as %d, want 2000", late)
	}
	// More stalls than the ring holds: the oldest merge, nothing is lost.
	now := int64(9000)
	for i := 0; i < 3*lagStalls; i++ {
		now += tick + 100
		lt.observe(now, tick)
	}
	if got, want := lt.since(0), int64(1000+3*lagStalls*100); got != want {
		t.Fatalf("since(0) after merging: %d, want %d", got, want)
	}
	if got := lt.since(now - 1); got != 100 {
		t.Fatalf("since the last stall began: %d, want 100", got)
	}
	if m := lt.recentMax(now); m != 1000 {
		t.Fatalf("recentMax %d, want 1000", m)
	}
	if m := lt.recentMax(now + lagWindow + 1); m != 0 {
		t.Fatalf("recentMax a window later %d, want 0", m)
	}
}

// echoHandler sends every message back.
type echoHandler struct{}

func (echoHandler) OnOpen(*Conn)                           {}
func (echoHandler) OnMessage(c *Conn, op OpCode, b []byte) { _ = c.Send(op, b) }
func (echoHandler) OnClose(*Conn, error)                   {}

// stallFixture is a server with short ping deadlines, live gorilla
// clients that answer pings, and one dead client that upgraded and then
// went silent (it never reads or writes again).
type stallFixture struct {
	s    *Server
	live []*websocket.Conn
	dead net.Conn
}

const (
	stallPing = time.Second
	stallPong = 1500 * time.Millisecond
	stallLive = 8
)

func newStallFixture(t *testing.T) *stallFixture {
	t.Helper()
	cfg := testConfig()
	cfg.PingInterval, cfg.PongTimeout = stallPing, stallPong
	s := newTestServer(t, cfg, echoHandler{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Shutdown(t.Context()) })
	f := &stallFixture{s: s}
	url := "ws://" + s.Addr().String() + "/ws"
	for range stallLive {
		ws, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ws.Close() })
		f.live = append(f.live, ws)
		// gorilla answers pings from inside its reads: keep reading.
		go func() {
			for {
				if _, _, err := ws.NextReader(); err != nil {
					return
				}
			}
		}()
	}
	dead, _, err := raw.Dial(s.Addr().String(), "/ws")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dead.Close() })
	f.dead = dead
	waitUntil(t, func() bool { return s.Stats().WSConns == stallLive+1 })
	return f
}

// onLoop runs fn on the server's loop and waits for it.
func (f *stallFixture) onLoop(t *testing.T, fn func(l *eventLoop)) {
	t.Helper()
	l := f.s.eventLoops()[0]
	done := make(chan struct{})
	if !l.enqueue(command{kind: cmdFunc, fn: func() { fn(l); close(done) }}) {
		t.Fatal("loop refused the command")
	}
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("loop command did not run")
	}
}

// pingAll pings every open connection now, as the wheel would, on the loop.
func pingAll(l *eventLoop) {
	now := l.srv.now()
	for c := range l.conns {
		if c.state == stateOpen {
			c.heard(now - int64(stallPing))
			l.checkOpen(c, now)
		}
	}
}

// checkAlive asserts through the sockets that every live client is still
// served (an echo comes back) and that the dead one was closed.
func (f *stallFixture) checkAlive(t *testing.T) {
	t.Helper()
	for i, ws := range f.live {
		if err := ws.WriteMessage(websocket.TextMessage, []byte("alive?")); err != nil {
			t.Fatalf("live client %d: write: %v", i, err)
		}
	}
	// Each echo written back proves the connection is served.
	waitUntil(t, func() bool { return f.s.Stats().MessagesOut >= stallLive })
	f.dead.SetReadDeadline(time.Now().Add(30 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := f.dead.Read(buf); err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatal("the dead client was never closed")
			}
			break // EOF or reset: closed
		}
	}
	waitUntil(t, func() bool { return f.s.Stats().Closes["liveness"] == 1 })
	st := f.s.Stats()
	if st.WSConns != stallLive || st.Closes["liveness"] != 1 {
		t.Fatalf("%d connections open, %d liveness closes; want %d and 1 (the dead client)",
			st.WSConns, st.Closes["liveness"], stallLive)
	}
}

// A loop stalled for longer than the ping interval and the pong timeout
// together, right after pinging, finds on its next tick every pong deadline
// passed on paper. The stall is the loop's, not the peers': the deadlines
// stretch by it, the live clients (whose pongs wait in the sockets) stay,
// and the dead one is still closed.
func TestLivenessSurvivesLoopStall(t *testing.T) {
	f := newStallFixture(t)
	f.onLoop(t, func(l *eventLoop) {
		pingAll(l)
		time.Sleep(stallPing + stallPong + 500*time.Millisecond) // the stall
		// drain runs the tick the ticker asked for meanwhile, before any
		// socket is read.
	})
	f.checkAlive(t)
	st := f.s.Stats()
	if st.LivenessRescues < stallLive {
		t.Fatalf("%d rescues counted, want at least %d", st.LivenessRescues, stallLive)
	}
	if st.LoopStalls == 0 || st.LoopLagMax < int64(stallPing+stallPong) || st.LoopLagNanos < st.LoopLagMax {
		t.Fatalf("lag not measured: stalls %d, max %v, total %v", st.LoopStalls,
			time.Duration(st.LoopLagMax), time.Duration(st.LoopLagNanos))
	}
}

// A liveness check that runs before the loop has read what arrived (here,
// inside a stall, before any tick could measure it) finds the pongs in the
// socket's receive buffer and waits for the loop to read them; a dead peer
// has sent nothing and is closed at once.
func TestLivenessReadsUnreadPongs(t *testing.T) {
	f := newStallFixture(t)
	var rescued, dropped int
	f.onLoop(t, func(l *eventLoop) {
		pingAll(l)
		var sent int64
		for c := range l.conns {
			if at, ok := c.pingedAt(l.srv.cfg.PingInterval); ok {
				sent = max(sent, at)
			}
		}
		// Wait, stalled, until the pong deadline has passed and every live
		// client's pong is in its socket.
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			ready := 0
			for c := range l.conns {
				if unreadBytes(c) > 0 {
					ready++
				}
			}
			if ready == stallLive && l.srv.now() > sent+int64(stallPong) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		before := l.stats.livenessRescues.Load()
		var open []*Conn
		for c := range l.conns {
			open = append(open, c)
		}
		for _, c := range open {
			l.checkOpen(c, l.srv.now())
			if c.state == stateClosed || c.cause == causeLiveness {
				dropped++
			}
		}
		rescued = int(l.stats.livenessRescues.Load() - before)
	})
	if rescued != stallLive || dropped != 1 {
		t.Fatalf("rescued %d, dropped %d; want %d and 1", rescued, dropped, stallLive)
	}
	f.checkAlive(t)
}

// A client whose upgrade request waited, unread, for a loop stalled past
// the handshake timeout is upgraded, not dropped: the deadline moves by
// the stall.
func TestHandshakeSurvivesLoopStall(t *testing.T) {
	cfg := testConfig()
	cfg.HandshakeTimeout = time.Second
	s := newTestServer(t, cfg, echoHandler{})
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(t.Context())
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, func() bool { return s.Stats().HandshakesOpen == 1 })
	l := s.eventLoops()[0]
	stalled := make(chan struct{})
	l.enqueue(command{kind: cmdFunc, fn: func() {
		close(stalled)
		time.Sleep(cfg.HandshakeTimeout + 500*time.Millisecond)
	}})
	<-stalled
	key := codec.NewClientKey()
	conn.Write(codec.AppendClientRequest(nil, s.Addr().String(), "/ws", key[:], nil, nil))
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatalf("no answer to the request: %v (closes %v)", err, s.Stats().Closes)
	}
	if line != "HTTP/1.1 101 Switching Protocols\r\n" {
		t.Fatalf("answer %q, want 101", line)
	}
	if st := s.Stats(); st.LivenessRescues != 1 {
		t.Fatalf("%d rescues, want 1", st.LivenessRescues)
	}
}
