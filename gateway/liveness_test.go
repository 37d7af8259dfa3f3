package gateway_test

import (
	"context"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// Deadlines through real sockets. Upper bounds on when a close happens
// carry a generous slack for a loaded machine and the race detector; the
// measured times are logged.

const (
	pingEvery = 200 * time.Millisecond
	pongWait  = 200 * time.Millisecond
	tick      = 20 * time.Millisecond
	slack     = 2 * time.Second
)

func livenessConfig() gateway.Config {
	return gateway.Config{PingInterval: pingEvery, PongTimeout: pongWait, TimerTick: tick}
}

// waitClosed reads until the server ends the connection and returns when.
func waitClosed(t *testing.T, c *rawClient, limit time.Duration) time.Time {
	t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(limit))
	buf := make([]byte, 4096)
	for {
		if _, err := c.r.Read(buf); err != nil {
			if ne, ok := err.(interface{ Timeout() bool }); ok && ne.Timeout() {
				t.Fatalf("connection still open after %v", limit)
			}
			return time.Now()
		}
	}
}

// A client that never answers is dropped within ping interval + pong
// timeout + a tick, without a closing handshake, and counted as liveness.
func TestUnansweredPingsDrop(t *testing.T) {
	srv := startServer(t, livenessConfig(), gateway.Echo{})
	c := dialRaw(t, srv)
	start := time.Now()
	// Reading does not answer: pings pile up unanswered.
	end := waitClosed(t, c, pingEvery+pongWait+tick+slack)
	t.Logf("dropped after %v (bound %v)", end.Sub(start), pingEvery+pongWait+tick)
	waitFor(t, func() bool { return srv.Stats().Closes["liveness"] == 1 })
	if srv.Stats().PingsSent < 1 {
		t.Fatal("no ping was sent")
	}
}

// A client that answers pings stays connected across ten intervals.
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

// A client that keeps sending its own pings and data is never pinged, so
// never pinged out, even though it answers nothing.
func TestActiveClientNotPinged(t *testing.T) {
	srv := startServer(t, livenessConfig(), gateway.Echo{})
	c := dialRaw(t, srv)
	deadline := time.Now().Add(10 * pingEvery)
	for i := 0; time.Now().Before(deadline); i++ {
		if i%2 == 0 {
			c.frame(ws.OpPing, true, []byte("mine"))
		} else {
			c.frame(ws.OpText, true, []byte("data"))
		}
		time.Sleep(pingEvery / 4)
	}
	if n := srv.Stats().PingsSent; n != 0 {
		t.Fatalf("server sent %d pings to an active client", n)
	}
	c.frame(ws.OpText, true, []byte("last"))
	for {
		h, p, err := c.readFrame()
		if err != nil {
			t.Fatalf("connection lost: %v", err)
		}
		if h.OpCode == ws.OpText && string(p) == "last" {
			break
		}
	}
}

// A client sending its upgrade one byte per 100 ms is dropped at the
// handshake timeout, and nothing of it stays behind.
func TestSlowlorisHandshake(t *testing.T) {
	const timeout = 500 * time.Millisecond
	srv := startServer(t, gateway.Config{HandshakeTimeout: timeout, TimerTick: tick}, gateway.Echo{})
	baseline := gateway.BuffersInUse()
	c := dialTCP(t, srv)
	key := codec.NewClientKey()
	req := codec.AppendClientRequest(nil, "example.com", "/ws", key[:], nil, nil)
	start := time.Now()
	sent := 0
	for ; sent < len(req); sent++ {
		if _, err := c.conn.Write(req[sent : sent+1]); err != nil {
			break // the server dropped us
		}
		time.Sleep(100 * time.Millisecond)
		if time.Since(start) > timeout+slack {
			t.Fatal("still connected long after the handshake timeout")
		}
		if sent == 2 {
			waitFor(t, func() bool { return srv.Stats().Handshaking == 1 })
		}
	}
	end := waitClosed(t, c, slack)
	t.Logf("dropped after %v and %d bytes (timeout %v)", end.Sub(start), sent, timeout)
	waitFor(t, func() bool { return srv.Stats().ConnsOpen == 0 })
	s := srv.Stats()
	if got := s.Closes["handshake_timeout"]; got != 1 {
		t.Fatalf("handshake timeouts: %d", got)
	}
	if s.HandshakeTimeoutBytes < 3 {
		t.Fatalf("trickled bytes counted: %d", s.HandshakeTimeoutBytes)
	}
	if s.Handshaking != 0 || gateway.BuffersInUse() != baseline {
		t.Fatalf("left behind: %d parse states, %d buffers (baseline %d)",
			s.Handshaking, gateway.BuffersInUse(), baseline)
	}
}

// A peer that only answers pings is idle: closed with 1000 "idle timeout".
func TestIdleTimeout(t *testing.T) {
	cfg := livenessConfig()
	cfg.IdleTimeout = 600 * time.Millisecond
	srv := startServer(t, cfg, gateway.Echo{})
	client, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	start := time.Now()
	client.SetReadDeadline(time.Now().Add(cfg.IdleTimeout + slack))
	_, _, err = client.ReadMessage() // answers pings meanwhile
	ce, ok := err.(*gorilla.CloseError)
	if !ok || ce.Code != 1000 || ce.Text != "idle timeout" {
		t.Fatalf("got %v, want close 1000 idle timeout", err)
	}
	t.Logf("closed after %v (idle timeout %v)", time.Since(start), cfg.IdleTimeout)
	if time.Since(start) < cfg.IdleTimeout-tick {
		t.Fatalf("closed after %v, before the idle timeout", time.Since(start))
	}
	if srv.Stats().PingsSent == 0 {
		t.Fatal("no pings were answered during the idle period")
	}
}

// Data keeps a connection from going idle, in either direction.
func TestIdleTimeoutResetByData(t *testing.T) {
	cfg := livenessConfig()
	cfg.IdleTimeout = 400 * time.Millisecond
	srv := startServer(t, cfg, gateway.Echo{})
	c := dialRaw(t, srv)
	for range 8 { // 8 x 100 ms: twice the idle timeout
		c.frame(ws.OpText, true, []byte("tick"))
		if _, msg := c.readMessage(); string(msg) != "tick" {
			t.Fatalf("got %q", msg)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := srv.Stats().Closes["idle"]; n != 0 {
		t.Fatalf("%d idle closes of an active connection", n)
	}
}

// Max lifetime closes with 1001, within ±10% plus a tick.
func TestMaxLifetime(t *testing.T) {
	cfg := livenessConfig()
	cfg.MaxLifetime = time.Second
	srv := startServer(t, cfg, gateway.Echo{})
	client, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	start := time.Now()
	client.SetReadDeadline(time.Now().Add(cfg.MaxLifetime + slack))
	_, _, err = client.ReadMessage()
	if !gorilla.IsCloseError(err, gorilla.CloseGoingAway) {
		t.Fatalf("got %v, want close 1001", err)
	}
	age := time.Since(start)
	t.Logf("closed at age %v (lifetime %v ±10%%)", age, cfg.MaxLifetime)
	if age < cfg.MaxLifetime*9/10-tick {
		t.Fatalf("closed at %v, before 90%% of the lifetime", age)
	}
	waitFor(t, func() bool { return srv.Stats().Closes["lifetime"] == 1 })
}

// After the server's close frame, a peer that never answers is dropped at
// the close timeout.
func TestCloseTimeout(t *testing.T) {
	cfg := livenessConfig()
	cfg.CloseTimeout = 300 * time.Millisecond
	opened := make(chan *gateway.Conn, 1)
	srv := startServer(t, cfg, gateway.HandlerFuncs{Open: func(c *gateway.Conn) { opened <- c }})
	c := dialRaw(t, srv)
	conn := <-opened
	start := time.Now()
	conn.Close(1000, "bye")
	h, _, err := c.readFrame()
	if err != nil || h.OpCode != ws.OpClose {
		t.Fatalf("want a close frame: %v %v", h.OpCode, err)
	}
	end := waitClosed(t, c, cfg.CloseTimeout+slack) // we never answer
	t.Logf("dropped %v after the close frame (timeout %v)", end.Sub(start), cfg.CloseTimeout)
	if end.Sub(start) < cfg.CloseTimeout-tick {
		t.Fatalf("dropped after %v, before the close timeout", end.Sub(start))
	}
	waitFor(t, func() bool { return srv.Stats().CloseTimeouts == 1 })
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatal("condition not met within 10s")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// With a pong timeout longer than the ping interval, an answering client is
// still pinged every interval, not every pong timeout.
func TestPingCadenceWithLongPongTimeout(t *testing.T) {
	cfg := gateway.Config{PingInterval: 100 * time.Millisecond, PongTimeout: time.Second, TimerTick: 10 * time.Millisecond}
	srv := startServer(t, cfg, gateway.Echo{})
	client, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	go func() {
		for {
			if _, _, err := client.ReadMessage(); err != nil { // answers pings
				return
			}
		}
	}()
	time.Sleep(2 * time.Second)
	// At one ping per interval that is about 20; at one per pong timeout
	// it would be about 2.
	if n := srv.Stats().PingsSent; n < 8 {
		t.Fatalf("%d pings in 2s at a 100ms interval", n)
	}
}
