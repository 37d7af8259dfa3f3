package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/clock"
)

// RFC 6455 §5.5 (control frames), §5.5.2 (ping) and §5.5.3 (pong);
// Autobahn cases 2.1-2.11. Close frames (§5.5.1) are in
// conformance_close_test.go, control frames between fragments in
// conformance_fragmentation_test.go.

// pingPayload is n bytes that run through every byte value, 0x00 and 0xff
// included, so pongs are checked as binary data, not text.
func pingPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(n*7 + i*151)
	}
	return p
}

// TestRFC6455_5_5_2_PingPayloadLengths pings with every payload length from
// 0 to 125, binary payloads, and requires each pong to carry its ping's
// payload, in order.
func TestRFC6455_5_5_2_PingPayloadLengths(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	t.Run("one at a time", func(t *testing.T) {
		c := dialRaw(t, srv)
		for n := 0; n <= 125; n++ {
			c.send(msg(opPing, pingPayload(n)))
			c.expectPong(pingPayload(n))
		}
	})
	for _, mode := range allWriteModes {
		t.Run("all 126 pings sent "+mode.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			var b []byte
			for n := 0; n <= 125; n++ {
				b = append(b, c.wire(msg(opPing, pingPayload(n)))...)
			}
			c.sendIn(mode, newRand(t), b)
			for n := 0; n <= 125; n++ {
				c.expectPong(pingPayload(n))
			}
		})
	}
	t.Run("text payload", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send(ping("Hello, world! κόσμε"))
		c.expectPong([]byte("Hello, world! κόσμε"))
	})
}

// TestRFC6455_5_5_3_UnsolicitedPongIgnored: "A Pong frame MAY be sent
// unsolicited. [...] A response to an unsolicited Pong frame is not
// expected." Each case is followed by a probe ping whose pong must be the
// next frame.
func TestRFC6455_5_5_3_UnsolicitedPongIgnored(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name   string
		frames []wframe
	}{
		{"empty pong", []wframe{pong("")}},
		{"pong with payload", []wframe{pong("unsolicited")}},
		{"pong of 125 binary bytes", []wframe{msg(opPong, pingPayload(125))}},
		{"ten pongs", func() (f []wframe) {
			for n := range 10 {
				f = append(f, msg(opPong, pingPayload(n)))
			}
			return f
		}()},
		{"pong then a message", []wframe{pong("x"), text("after pong")}},
	}
	for _, tc := range cases {
		for _, mode := range []writeMode{oneWrite, byteByByte} {
			t.Run(tc.name+"/"+mode.name, func(t *testing.T) {
				c := dialRaw(t, srv)
				c.sendIn(mode, nil, c.wire(tc.frames...))
				for _, f := range tc.frames {
					if f.op == opText {
						c.expectMessage(opText, f.data)
					}
				}
				c.probe()
			})
		}
	}
	t.Run("pong then ping answers the ping only", func(t *testing.T) {
		// Autobahn 2.9.
		c := dialRaw(t, srv)
		c.send(pong("unsolicited"), ping("solicited"))
		c.expectPong([]byte("solicited"))
		c.probe()
	})
}

// TestRFC6455_5_5_ControlPayloadOver125: "All control frames MUST have a
// payload length of 125 bytes or less". The server fails the connection
// from the header, before the payload arrives. (A 126-byte ping sent whole
// is in protocol_test.go.)
func TestRFC6455_5_5_ControlPayloadOver125(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name string
		f    wframe
	}{
		{"ping of 126 sent byte by byte", msg(opPing, pingPayload(126))},
		{"pong of 126", msg(opPong, pingPayload(126))},
		{"close of 126", msg(opClose, append([]byte{0x03, 0xe8}, bytes.Repeat([]byte("r"), 124)...))},
		{"ping announcing 65536, no payload", wframe{fin: true, op: opPing, announce: 65536}},
		{"ping announcing 2^62, no payload", wframe{fin: true, op: opPing, announce: 1 << 62}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(ping("first"))
			c.expectPong([]byte("first"))
			c.sendIn(byteByByte, nil, c.wire(tc.f))
			c.expectFail(1002)
		})
	}
}

// TestRFC6455_5_5_2_PingGorilla cross-checks pong payloads with
// gorilla/websocket, whose client also checks every server frame it reads.
func TestRFC6455_5_5_2_PingGorilla(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var pongs [][]byte
	c.SetPongHandler(func(s string) error {
		pongs = append(pongs, []byte(s))
		return nil
	})
	deadline := time.Now().Add(10 * time.Second)
	for n := 0; n <= 125; n++ {
		if err := c.WriteControl(gorilla.PingMessage, pingPayload(n), deadline); err != nil {
			t.Fatal(err)
		}
		// The echo of a message sent after the ping comes after its pong:
		// reading it runs the pong handler.
		if err := c.WriteMessage(gorilla.BinaryMessage, []byte{byte(n)}); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, []byte{byte(n)}) {
			t.Fatalf("echo after ping %d: %q, %v", n, got, err)
		}
		if len(pongs) != n+1 || !bytes.Equal(pongs[n], pingPayload(n)) {
			t.Fatalf("after ping of %d bytes: pongs %d, last %x", n, len(pongs), pongs[len(pongs)-1])
		}
	}
	if err := c.WriteControl(gorilla.PingMessage, make([]byte, 126), deadline); err == nil {
		t.Fatal("gorilla sent a 126-byte ping; it should refuse, as the RFC says")
	}
}

// TestRFC6455_5_5_2_PingCoder cross-checks with coder/websocket, whose Ping
// sends a random payload and waits for the pong that carries it.
func TestRFC6455_5_5_2_PingCoder(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, _, err := coder.Dial(ctx, wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ctx = c.CloseRead(ctx) // a reader to receive the pongs
	for range 20 {
		if err := c.Ping(ctx); err != nil {
			t.Fatalf("ping: %v", err)
		}
	}
	if err := c.Close(coder.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// TestRFC6455_5_5_2_ServerPing: the server's keepalive ping is a
// well-formed ping (checked by next), and a pong with its payload, "as soon
// as practical" (§5.5.2), keeps the connection open: the second ping comes
// after the first one's pong timeout. (The server looks at a pong only when
// the pong timeout ends, so pings come at most every PongTimeout.)
func TestRFC6455_5_5_2_ServerPing(t *testing.T) {
	srv := startConformance(t, gateway.Config{
		PingInterval: 20 * time.Millisecond,
		PongTimeout:  time.Second,
		TimerTick:    5 * time.Millisecond,
	}, gateway.Echo{})
	c := dialRaw(t, srv)
	for i := range 2 {
		f := c.next()
		if f.op != opPing {
			t.Fatalf("got %s, want the server's ping", f)
		}
		c.send(msg(opPong, f.data))
		c.send(text(fmt.Sprint("alive ", i)))
		for f = c.next(); f.op == opPing; f = c.next() {
			c.send(msg(opPong, f.data))
		}
		if f.op != opText || string(f.data) != fmt.Sprint("alive ", i) {
			t.Fatalf("got %s, want the echo", f)
		}
	}
}

// TestRFC6455_5_5_2_LongFrameIsProofOfLife: a client cannot answer a ping
// while it is in the middle of a frame (control frames go between frames,
// §5.4), so payload bytes that keep arriving must count as proof of life.
// Here the server pings just after a large frame has started, and the
// client goes on sending that frame, slowly, for longer than PongTimeout
// before it can send its pong.
func TestRFC6455_5_5_2_LongFrameIsProofOfLife(t *testing.T) {
	const (
		pongTimeout = 500 * time.Millisecond
		step        = 5 * time.Millisecond
	)
	f := clock.NewFake(time.Unix(1_000_000_000, 0))
	srv := startConformance(t, gateway.Config{
		PingInterval: 50 * time.Millisecond,
		PongTimeout:  pongTimeout,
		TimerTick:    step,
		Clock:        f,
	}, gateway.Echo{})
	if !f.WaitTickers(1, 10*time.Second) {
		t.Fatal("the server's ticker did not start")
	}
	c := dialRaw(t, srv)
	p := binaryPayload(1 << 20)
	w := c.wire(binaryMsg(p))
	head := len(w) - len(p)
	c.writeRaw(w[:head+1])
	for i := 0; srv.Stats().PingsSent == 0; i++ {
		if i > 100 {
			t.Fatal("no ping within two intervals")
		}
		f.Advance(step)
	}
	if f := c.next(); f.op != opPing {
		t.Fatalf("got %s, want the server's ping", f)
	}
	// Keep the payload flowing, a chunk every other tick (on the fake
	// clock), for twice the pong timeout; only then finish the frame and
	// answer the ping.
	w = w[head+1:]
	for elapsed := time.Duration(0); elapsed < 2*pongTimeout; elapsed += 2 * step {
		n := min(len(w)-1, 1024)
		if _, err := c.conn.Write(w[:n]); err != nil {
			t.Fatalf("the server dropped a connection that was sending (after %v): %v", elapsed, err)
		}
		w = w[n:]
		f.Advance(step)
		f.Advance(step)
	}
	if st := srv.Stats(); st.Closes["liveness"] != 0 {
		t.Fatalf("dropped for liveness while the frame was arriving: %v", st.Closes)
	}
	c.writeRaw(w)
	c.send(pong(""))
	for {
		f, err := c.tryNext()
		if err != nil {
			t.Fatalf("the server dropped a connection that was sending: %v", err)
		}
		if f.op == opPing {
			continue
		}
		if f.op != opBinary || !bytes.Equal(f.data, p) {
			t.Fatalf("got %s, want the echo", f)
		}
		return
	}
}

// TestRFC6455_5_5_2_PongsRespectTheOutboundBound: a client that pings and
// never reads must not make the server queue pongs without end. Pongs
// count against MaxOutbound like any output: past it the slow-consumer
// policy applies (SlowClose, the default: 1008), which §5.5.3 allows since
// a pong may answer only the most recent ping. The client's small receive
// buffer keeps the kernel from absorbing the pongs.
func TestRFC6455_5_5_2_PongsRespectTheOutboundBound(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{}) // MaxOutbound 1 MiB
	c := dialSmallWindow(t, srv)
	one := c.wire(msg(opPing, pingPayload(125)))
	var batch []byte
	for range 8192 {
		batch = append(batch, one...)
	}
	const pings = 16 * 8192 // 16 MiB of pings, 16 MiB of pongs
	for range pings / 8192 {
		if _, err := c.conn.Write(batch); err != nil {
			break // the server gave up on us: fine
		}
	}
	for i := 0; i < pings; i++ {
		f, err := c.tryNext()
		if err != nil {
			t.Fatalf("after %d pongs: %v, want a 1008 close", i, err)
		}
		if f.op == opClose {
			if code, reason := closePayload(t, f.data); code != 1008 {
				t.Fatalf("close %d %q, want 1008", code, reason)
			}
			t.Logf("closed with 1008 after %d pongs (%d KiB)", i, i*127>>10)
			return
		}
		if f.op != opPong {
			t.Fatalf("got %s", f)
		}
	}
	t.Fatalf("the server queued all %d pongs (%d MiB) for a client that did not read", pings, pings*127>>20)
}
