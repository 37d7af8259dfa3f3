package gateway_test

import (
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/clock"
	"github.com/wsgate/wsgate/internal/testkit"
)

// Deadlines through real sockets, on a fake clock (internal/clock): the
// test steps time, one tick at a time, and each step returns once every
// loop has run its tick, so a bound is checked on both sides exactly and
// no test sleeps. TestAnsweredPingsKeepAlive and TestLivenessRealTime
// keep the real clock, end to end.

const (
	pingEvery = 200 * time.Millisecond
	pongWait  = 200 * time.Millisecond
	tick      = 20 * time.Millisecond
	slack     = 2 * time.Second
)

func livenessConfig() gateway.Config {
	return gateway.Config{PingInterval: pingEvery, PongTimeout: pongWait, TimerTick: tick}
}

// fakeTime is a server's fake clock.
type fakeTime struct {
	t    testing.TB
	f    *clock.Fake
	tick time.Duration
}

// startFake starts a server on a fake clock.
func startFake(t testing.TB, cfg gateway.Config, h gateway.Handler) (*gateway.Server, *fakeTime) {
	t.Helper()
	if cfg.TimerTick == 0 {
		t.Fatal("startFake needs Config.TimerTick")
	}
	f := clock.NewFake(time.Unix(1_000_000_000, 0))
	cfg.Clock = f
	srv := startServer(t, cfg, h)
	if !f.WaitTickers(1, 10*time.Second) {
		t.Fatal("the server's ticker did not start")
	}
	return srv, &fakeTime{t: t, f: f, tick: cfg.TimerTick}
}

// advance steps the clock by d, a tick at a time.
func (ft *fakeTime) advance(d time.Duration) {
	for ; d > 0; d -= ft.tick {
		ft.f.Advance(min(d, ft.tick))
	}
}

// isOpen reports whether the server still holds c's connection: a ping
// gets its pong (RFC 6455 §5.5.2) on an open one, EOF or a close on a
// closed one. Pings from the server are skipped, not answered.
func isOpen(t *testing.T, c *rawClient) bool {
	t.Helper()
	c.frame(ws.OpPing, true, []byte("open?"))
	for {
		h, p, err := c.readFrame()
		switch {
		case err != nil || h.OpCode == ws.OpClose:
			return false
		case h.OpCode == ws.OpPong && string(p) == "open?":
			return true
		}
	}
}

// A client that never answers is dropped within ping interval + pong
// timeout + a tick, without a closing handshake, and counted as liveness;
// not before the pong timeout.
func TestUnansweredPingsDrop(t *testing.T) {
	srv, ft := startFake(t, livenessConfig(), gateway.Echo{})
	c := dialRaw(t, srv)
	// A ping of our own would count as life: watch the stats instead.
	ft.advance(pongWait - tick)
	if st := srv.Stats(); st.Closes["liveness"] != 0 || st.WSConns != 1 {
		t.Fatalf("dropped before the pong timeout: %+v", st.Closes)
	}
	ft.advance(pingEvery + tick + tick) // the rest of the bound
	c.expectDrop()
	waitFor(t, func() bool { return srv.Stats().Closes["liveness"] == 1 })
	if srv.Stats().PingsSent != 1 {
		t.Fatalf("%d pings sent, want 1", srv.Stats().PingsSent)
	}
}

// A client that keeps sending its own pings and data is never pinged, so
// never pinged out, even though it answers nothing.
func TestActiveClientNotPinged(t *testing.T) {
	srv, ft := startFake(t, livenessConfig(), gateway.Echo{})
	c := dialRaw(t, srv)
	for i := range 40 { // 10 intervals
		if i%2 == 0 {
			if !isOpen(t, c) {
				t.Fatalf("closed after %d steps", i)
			}
		} else {
			c.frame(ws.OpText, true, []byte("data"))
			if _, msg := c.readMessage(); string(msg) != "data" {
				t.Fatalf("got %q", msg)
			}
		}
		ft.advance(pingEvery / 4)
	}
	if n := srv.Stats().PingsSent; n != 0 {
		t.Fatalf("server sent %d pings to an active client", n)
	}
}

// A client sending its upgrade one byte per 100 ms is dropped at the
// handshake timeout (not before), and nothing of it stays behind.
func TestSlowlorisHandshake(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv, ft := startFake(t, gateway.Config{HandshakeTimeout: timeout, TimerTick: tick}, gateway.Echo{})
	baseline := gateway.BuffersInUse()
	c := dialTCP(t, srv)
	waitFor(t, func() bool { return srv.Stats().HandshakesOpen == 1 })
	key := codec.NewClientKey()
	req := codec.AppendClientRequest(nil, "example.com", "/ws", key[:], nil, nil)
	sent := 0
	for elapsed := time.Duration(0); elapsed < timeout-tick; elapsed += 100 * time.Millisecond {
		c.writeRaw(req[sent : sent+1])
		sent++
		waitFor(t, func() bool { return srv.Stats().Handshaking == 1 }) // its bytes arrived
		ft.advance(min(100*time.Millisecond, timeout-tick-elapsed))
	}
	if st := srv.Stats(); st.ConnsOpen != 1 || st.Closes["handshake_timeout"] != 0 {
		t.Fatalf("dropped before the handshake timeout: %d open, %d timeouts", st.ConnsOpen, st.Closes["handshake_timeout"])
	}
	ft.advance(2 * tick)
	c.expectEOF()
	waitFor(t, func() bool { return srv.Stats().ConnsOpen == 0 })
	s := srv.Stats()
	if got := s.Closes["handshake_timeout"]; got != 1 {
		t.Fatalf("handshake timeouts: %d", got)
	}
	if s.HandshakeTimeoutBytes != int64(sent) {
		t.Fatalf("trickled bytes counted: %d, sent %d", s.HandshakeTimeoutBytes, sent)
	}
	if s.Handshaking != 0 || gateway.BuffersInUse() != baseline {
		t.Fatalf("left behind: %d parse states, %d buffers (baseline %d)",
			s.Handshaking, gateway.BuffersInUse(), baseline)
	}
}

// answerPings answers the server's pings on c from a goroutine and hands
// on the first other frame.
func answerPings(c *rawClient) <-chan []byte {
	out := make(chan []byte, 1)
	go func() {
		for {
			h, p, err := c.readFrame()
			switch {
			case err != nil:
				out <- nil
				return
			case h.OpCode == ws.OpPing:
				c.conn.Write(codec.AppendFrameMasked(nil, ws.OpPong, true, p, c.key))
			default:
				out <- append([]byte{byte(h.OpCode)}, p...)
				return
			}
		}
	}()
	return out
}

// A peer that only answers pings is idle: closed with 1000 "idle timeout"
// at the idle timeout, within a tick, not before.
func TestIdleTimeout(t *testing.T) {
	cfg := livenessConfig()
	cfg.IdleTimeout = 600 * time.Millisecond
	cfg.PongTimeout = time.Minute // a late pong must not end it first
	srv, ft := startFake(t, cfg, gateway.Echo{})
	c := dialRaw(t, srv)
	got := answerPings(c)
	ft.advance(cfg.IdleTimeout - tick)
	if srv.Stats().WSConns != 1 {
		t.Fatal("closed before the idle timeout")
	}
	ft.advance(2 * tick)
	f := <-got
	if len(f) < 3 || ws.OpCode(f[0]) != ws.OpClose {
		t.Fatalf("got %q, want a close frame", f)
	}
	if code, reason, _ := codec.ParseCloseUnsafe(f[1:]); code != 1000 || string(reason) != "idle timeout" {
		t.Fatalf("close %d %q, want 1000 idle timeout", code, reason)
	}
	if srv.Stats().PingsSent == 0 {
		t.Fatal("no pings were sent during the idle period")
	}
	c.conn.Write(codec.AppendCloseMasked(nil, 1000, "", c.key))
	c.expectEOF()
	waitFor(t, func() bool { return srv.Stats().Closes["idle"] == 1 })
}

// Data keeps a connection from going idle, in either direction.
func TestIdleTimeoutResetByData(t *testing.T) {
	cfg := livenessConfig()
	cfg.IdleTimeout = 400 * time.Millisecond
	cfg.PingInterval = -1
	srv, ft := startFake(t, cfg, gateway.Echo{})
	c := dialRaw(t, srv)
	for range 8 { // 8 x 100 ms: twice the idle timeout
		c.frame(ws.OpText, true, []byte("tick"))
		if _, msg := c.readMessage(); string(msg) != "tick" {
			t.Fatalf("got %q", msg)
		}
		ft.advance(100 * time.Millisecond)
	}
	if n := srv.Stats().Closes["idle"]; n != 0 || !isOpen(t, c) {
		t.Fatalf("%d idle closes of an active connection", n)
	}
}

// Max lifetime closes with 1001, within ±10% plus a tick.
func TestMaxLifetime(t *testing.T) {
	cfg := livenessConfig()
	cfg.MaxLifetime = time.Second
	cfg.PingInterval = -1
	srv, ft := startFake(t, cfg, gateway.Echo{})
	c := dialRaw(t, srv)
	ft.advance(cfg.MaxLifetime*9/10 - tick)
	if !isOpen(t, c) {
		t.Fatal("closed before 90% of the lifetime")
	}
	ft.advance(cfg.MaxLifetime*2/10 + 2*tick)
	c.expectClose(1001)
	waitFor(t, func() bool { return srv.Stats().Closes["lifetime"] == 1 })
}

// After the server's close frame, a peer that never answers is dropped at
// the close timeout, within a tick, not before.
func TestCloseTimeout(t *testing.T) {
	cfg := livenessConfig()
	cfg.CloseTimeout = 300 * time.Millisecond
	cfg.PingInterval = -1
	opened := make(chan *gateway.Conn, 1)
	srv, ft := startFake(t, cfg, gateway.HandlerFuncs{Open: func(c *gateway.Conn) { opened <- c }})
	c := dialRaw(t, srv)
	conn := <-opened
	conn.Close(1000, "bye")
	h, _, err := c.readFrame()
	if err != nil || h.OpCode != ws.OpClose {
		t.Fatalf("want a close frame: %v %v", h.OpCode, err)
	}
	ft.advance(cfg.CloseTimeout - tick)
	if srv.Stats().ConnsOpen != 1 {
		t.Fatal("dropped before the close timeout")
	}
	ft.advance(2 * tick)
	c.expectEOF() // we never answer
	waitFor(t, func() bool { return srv.Stats().CloseTimeouts == 1 })
}

// With a pong timeout longer than the ping interval, an answering client is
// still pinged every interval, not every pong timeout. The test steps one
// tick at a time and answers each ping before the next tick (its own ping
// after the pong tells when the server has read the pong), so the cadence
// is exact: the first ping within the first interval (its phase is
// jittered), then one every interval, on the tick.
func TestPingCadenceWithLongPongTimeout(t *testing.T) {
	const (
		every = 100 * time.Millisecond
		step  = 10 * time.Millisecond
		ticks = 200 // 2 s
	)
	cfg := gateway.Config{PingInterval: every, PongTimeout: time.Second, TimerTick: step}
	srv, ft := startFake(t, cfg, gateway.Echo{})
	c := dialRaw(t, srv)
	var at []int // the tick of each ping
	for i := 1; i <= ticks; i++ {
		ft.advance(step)
		if int(srv.Stats().PingsSent) == len(at) {
			continue
		}
		at = append(at, i)
		if h, p, err := c.readFrame(); err != nil || h.OpCode != ws.OpPing {
			t.Fatalf("tick %d: want the server's ping: %v %v", i, h.OpCode, err)
		} else {
			c.conn.Write(codec.AppendFrameMasked(nil, ws.OpPong, true, p, c.key))
		}
		if !isOpen(t, c) {
			t.Fatalf("closed at tick %d", i)
		}
	}
	const per = int(every / step)
	if len(at) == 0 || at[0] < 1 || at[0] > per {
		t.Fatalf("first ping at ticks %v, want within the first %d", at, per)
	}
	for k := 1; k < len(at); k++ {
		if at[k]-at[k-1] != per {
			t.Fatalf("pings at ticks %v: want one every %d", at, per)
		}
	}
	if want := 1 + (ticks-at[0])/per; len(at) != want || srv.Stats().PingsSent != int64(want) {
		t.Fatalf("%d pings (stats %d) in 2s at a 100ms interval, want %d", len(at), srv.Stats().PingsSent, want)
	}
}

// A client that answers pings stays connected across ten intervals, on
// the real clock, end to end with gorilla's own pong.
func TestAnsweredPingsKeepAlive(t *testing.T) {
	srv := startServer(t, livenessConfig(), gateway.Echo{})
	client, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	readErr := make(chan error, 1)
	go func() { // gorilla answers pings from inside ReadMessage
		for {
			if _, _, err := client.ReadMessage(); err != nil {
				readErr <- err
				return
			}
		}
	}()
	select {
	case err := <-readErr:
		t.Fatalf("connection ended: %v", err)
	case <-time.After(10 * pingEvery):
	}
	if n := srv.Stats().PingsSent; n < 5 {
		t.Fatalf("%d pings in 10 intervals", n)
	}
	if err := client.WriteMessage(gorilla.TextMessage, []byte("still here")); err != nil {
		t.Fatal(err)
	}
	if n := srv.Stats().Closes["liveness"]; n != 0 {
		t.Fatalf("%d liveness closes", n)
	}
}

// On the real clock, a client that never answers is dropped: the ticker
// goroutine and the wheel work without a fake.
func TestLivenessRealTime(t *testing.T) {
	srv := startServer(t, livenessConfig(), gateway.Echo{})
	c := dialRaw(t, srv)
	c.expectDrop()
	waitFor(t, func() bool { return srv.Stats().Closes["liveness"] == 1 })
}

// waitFor is testkit.Until for a condition that needs no name.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	testkit.Until(t, "the condition", cond)
}
