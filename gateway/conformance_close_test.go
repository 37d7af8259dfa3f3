package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// RFC 6455 §5.5.1 (the close frame), §7 (closing the connection) and §7.4
// (status codes); Autobahn cases 7.1-7.13. The raw code tables are in
// protocol_test.go (TestCloseCodes); here they are cross-checked with
// gorilla/websocket and coder/websocket, and the order of events around a
// close is checked frame by frame.

// closeRecorder echoes messages, closes with 4000 "bye" when told
// "close-me", and reports each connection's end with the messages its
// handler saw.
type closeRecorder struct {
	mu     sync.Mutex
	seen   map[uint64][]string
	closes chan closeEvent
}

type closeEvent struct {
	err  error
	msgs []string
}

func newCloseRecorder() *closeRecorder {
	return &closeRecorder{seen: map[uint64][]string{}, closes: make(chan closeEvent, 16)}
}

func (h *closeRecorder) OnOpen(*gateway.Conn) {}

func (h *closeRecorder) OnMessage(c *gateway.Conn, op gateway.OpCode, data []byte) {
	h.mu.Lock()
	h.seen[c.ID()] = append(h.seen[c.ID()], string(data))
	h.mu.Unlock()
	if string(data) == "close-me" {
		c.Close(4000, "bye")
		return
	}
	c.Send(op, data)
}

func (h *closeRecorder) OnClose(c *gateway.Conn, err error) {
	h.mu.Lock()
	msgs := h.seen[c.ID()]
	delete(h.seen, c.ID())
	h.mu.Unlock()
	h.closes <- closeEvent{err: err, msgs: msgs}
}

// ended waits for the next connection's OnClose.
func (h *closeRecorder) ended(t testing.TB) closeEvent {
	t.Helper()
	select {
	case ev := <-h.closes:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("OnClose was not called")
		return closeEvent{}
	}
}

// TestRFC6455_7_1_1_ServerClosesTCPFirst: "the server [...] SHOULD close
// the underlying TCP connection" once it has sent and received a close
// frame, so that the server, not the client, holds TIME_WAIT (§7.1.1).
func TestRFC6455_7_1_1_ServerClosesTCPFirst(t *testing.T) {
	h := newCloseRecorder()
	srv := startConformance(t, gateway.Config{CloseTimeout: 200 * time.Millisecond, TimerTick: 10 * time.Millisecond}, h)
	t.Run("client starts the close", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send(closeMsg(1000, "done"))
		c.expectCloseFrame(1000)
		c.expectTCPClosed() // the client has done nothing since its close
		h.ended(t)
	})
	t.Run("client close without a status", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send(closeMsg(0, ""))
		c.expectCloseFrame(1000) // §7.1.5: 1005 is never sent; 1000 answers
		c.expectTCPClosed()
		h.ended(t)
	})
	t.Run("handler starts the close", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send(text("close-me"))
		if reason := c.expectCloseFrame(4000); reason != "bye" {
			t.Fatalf("reason %q", reason)
		}
		c.send(closeMsg(4000, ""))
		c.expectTCPClosed()
		h.ended(t)
	})
	t.Run("client never answers the close", func(t *testing.T) {
		// The server gives up after CloseTimeout and closes TCP itself.
		c := dialRaw(t, srv)
		c.send(text("close-me"))
		c.expectCloseFrame(4000)
		c.expectTCPClosed()
		h.ended(t)
	})
}

// TestRFC6455_7_1_5_CloseCodeSeenByHandler: "the WebSocket Connection
// Close Code is defined as the status code contained in the first Close
// control frame received by the application", 1005 if it had none, and
// 1006 if the connection closed without a close frame (§7.1.5).
func TestRFC6455_7_1_5_CloseCodeSeenByHandler(t *testing.T) {
	h := newCloseRecorder()
	srv := startConformance(t, gateway.Config{}, h)
	cases := []struct {
		name   string
		do     func(c *rawClient)
		code   uint16
		reason string
	}{
		{"1000 with a reason", func(c *rawClient) { c.send(closeMsg(1000, "done")); c.expectCloseFrame(1000) }, 1000, "done"},
		{"4999", func(c *rawClient) { c.send(closeMsg(4999, "")); c.expectCloseFrame(4999) }, 4999, ""},
		{"no status", func(c *rawClient) { c.send(closeMsg(0, "")); c.expectCloseFrame(1000) }, 1005, ""},
		{"TCP closed without a close frame", func(c *rawClient) { c.conn.Close() }, 1006, ""},
		{"protocol error", func(c *rawClient) {
			c.send(msg(3, nil))
			c.expectFail(1002)
			// After a bad header the server reads no further frame: it
			// has shut down its side and waits for ours.
			c.conn.Close()
		}, 1002, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.do(dialRaw(t, srv))
			ev := h.ended(t)
			ce, ok := errors.AsType[*gateway.CloseError](ev.err)
			if !ok || uint16(ce.Code) != tc.code || tc.reason != "" && ce.Reason != tc.reason {
				t.Fatalf("OnClose got %v, want code %d reason %q", ev.err, tc.code, tc.reason)
			}
		})
	}
}

// TestRFC6455_5_5_1_NothingAfterClose: "The application MUST NOT send any
// more data frames after sending a Close frame", and data that follows a
// close frame is not delivered (Autobahn 7.1.1-7.1.6). Each case sends its
// frames in one write; the server answers the close and ends the
// connection with nothing more.
func TestRFC6455_5_5_1_NothingAfterClose(t *testing.T) {
	h := newCloseRecorder()
	srv := startConformance(t, gateway.Config{}, h)
	cases := []struct {
		name      string
		frames    []wframe
		delivered []string // messages the handler must have seen
	}{
		{"message, then close", []wframe{text("Hello World!"), closeMsg(1000, "")}, []string{"Hello World!"}},
		{"close twice", []wframe{closeMsg(1000, ""), closeMsg(1000, "")}, nil},
		{"close, then ping", []wframe{closeMsg(1000, ""), ping("no pong for me")}, nil},
		{"close, then message", []wframe{closeMsg(1000, ""), text("not delivered")}, nil},
		{"fragment, close, last fragment", []wframe{frag(opText, []byte("fragment1")), closeMsg(1000, ""), msg(opCont, []byte("fragment2"))}, nil},
		{"close, then a bad frame", []wframe{closeMsg(1000, ""), msg(3, nil)}, nil},
		{"close, then invalid UTF-8", []wframe{closeMsg(1000, ""), text("\xff")}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(tc.frames...)
			f := c.next()
			if tc.frames[0].op == opText && f.op == opText {
				f = c.next() // the echo may win the race with the close
			}
			if f.op != opClose {
				t.Fatalf("got %s, want the answer to our close", f)
			}
			if code, _ := closePayload(t, f.data); code != 1000 {
				t.Fatalf("close code %d, want 1000", code)
			}
			c.expectTCPClosed()
			if ev := h.ended(t); fmt.Sprint(ev.msgs) != fmt.Sprint(tc.delivered) {
				t.Fatalf("handler saw %q, want %q", ev.msgs, tc.delivered)
			}
		})
	}
	t.Run("large message, close, ping", func(t *testing.T) {
		// Autobahn 7.1.6: 256 KiB, then close, then ping, in one write.
		c := dialRaw(t, srv)
		big := binaryPayload(256 << 10)
		c.send(binaryMsg(big), closeMsg(1000, ""), ping("no pong for me"))
		f := c.next()
		if f.op == opBinary {
			if !bytes.Equal(f.data, big) {
				t.Fatal("echo differs")
			}
			f = c.next()
		}
		if f.op != opClose {
			t.Fatalf("got %s, want close", f)
		}
		c.expectTCPClosed()
		h.ended(t)
	})
	t.Run("after the server's close", func(t *testing.T) {
		// The server has sent its close: a message and a ping from the
		// client are neither delivered nor answered, and its close ends
		// the connection.
		c := dialRaw(t, srv)
		c.send(text("close-me"))
		c.expectCloseFrame(4000)
		c.send(text("too late"), ping("too late"), closeMsg(4000, ""))
		c.expectTCPClosed()
		if ev := h.ended(t); fmt.Sprint(ev.msgs) != "[close-me]" {
			t.Fatalf("handler saw %q", ev.msgs)
		}
	})
}

// TestRFC6455_5_5_1_CloseReason: "the data MAY contain a reason [...] the
// interpretation of this data is not defined by this specification. This
// data is not necessarily human readable but MUST be UTF-8" (§5.5.1,
// Autobahn 7.3, 7.5).
func TestRFC6455_5_5_1_CloseReason(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	valid := map[string]string{
		"empty reason":        "",
		"123 bytes, the most": strings.Repeat("*", 123),
		"multi-byte UTF-8":    "κόσμε € 😀",
		"123 bytes of UTF-8":  strings.Repeat("€", 41),
	}
	for name, reason := range valid {
		t.Run(name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(closeMsg(1000, reason))
			c.expectCloseFrame(1000)
			c.expectTCPClosed()
		})
	}
	for _, tc := range invalidUTF8 {
		if len(tc.text) > 123 {
			continue
		}
		t.Run("invalid/"+tc.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(closeMsg(1000, tc.text))
			c.expectCloseFrame(1007)
			c.expectTCPClosed()
		})
	}
	t.Run("invalid/truncated", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.send(closeMsg(1000, "ok \xe2\x82"))
		c.expectCloseFrame(1007)
		c.expectTCPClosed()
	})
}

// validCloseCodes and invalidCloseCodes follow §7.4.1, §7.4.2 and the IANA
// registry (1012-1014 were registered after the RFC).
var (
	validCloseCodes   = []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	invalidCloseCodes = []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}
)

// TestRFC6455_7_4_CloseCodesGorilla: every valid code is echoed, every
// invalid one answered with 1002 (Autobahn 7.7, 7.9), as gorilla/websocket
// sees it.
func TestRFC6455_7_4_CloseCodesGorilla(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	codes := append(append([]uint16(nil), validCloseCodes...), invalidCloseCodes...)
	for i, code := range codes {
		switch code {
		case 1014:
			continue // gorilla refuses to receive 1014, registered after its table was written
		case 1005:
			continue // gorilla sends 1005 as an empty close payload
		}
		want := int(code)
		if i >= len(validCloseCodes) {
			want = gorilla.CloseProtocolError
		}
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			c, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			// gorilla writes whatever code it is given.
			if err := c.WriteControl(gorilla.CloseMessage, gorilla.FormatCloseMessage(int(code), "reason"), time.Now().Add(5*time.Second)); err != nil {
				t.Fatal(err)
			}
			_, _, err = c.ReadMessage()
			if !gorilla.IsCloseError(err, want) {
				t.Fatalf("got %v, want close %d", err, want)
			}
		})
	}
}

// TestRFC6455_7_4_CloseCodesCoder: coder/websocket's Close succeeds only
// when the peer's close carries the code it sent.
func TestRFC6455_7_4_CloseCodesCoder(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	for _, code := range validCloseCodes {
		if code == 1002 || code == 1007 || code == 1010 || code == 1011 || code >= 1012 && code <= 1014 {
			continue // coder refuses to send some codes a client should not use
		}
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := coder.Dial(ctx, wsURL(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(coder.StatusCode(code), "κόσμε"); err != nil {
				t.Fatalf("close handshake with %d: %v", code, err)
			}
		})
	}
	t.Run("server error seen by coder", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := coder.Dial(ctx, wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		if err := c.Write(ctx, coder.MessageText, []byte("bad \xed\xa0\x80")); err != nil {
			t.Fatal(err)
		}
		_, _, err = c.Read(ctx)
		if coder.CloseStatus(err) != coder.StatusInvalidFramePayloadData {
			t.Fatalf("got %v, want close 1007", err)
		}
	})
}

// TestRFC6455_7_4_1_HandlerCannotSendReservedCodes: 1005, 1006 and 1015
// "MUST NOT be set as a status code in a Close control frame by an
// endpoint", codes outside 1000-4999 are not defined (§7.4.1, §7.4.2), and
// a close reason MUST be UTF-8 (§5.5.1). Conn.Close refuses them rather
// than put them on the wire, and the connection stays open.
func TestRFC6455_7_4_1_HandlerCannotSendReservedCodes(t *testing.T) {
	type closeReq struct {
		code   gateway.StatusCode
		reason string
	}
	reqs := make(chan closeReq, 1)
	errs := make(chan error, 1)
	srv := startConformance(t, gateway.Config{}, gateway.HandlerFuncs{
		Message: func(c *gateway.Conn, op gateway.OpCode, data []byte) {
			r := <-reqs
			errs <- c.Close(r.code, r.reason)
		},
	})
	for _, tc := range []closeReq{
		{1005, ""}, {1006, "abnormal"}, {1015, ""}, {1004, ""}, {999, ""}, {2999, ""}, {5000, ""}, {65535, ""},
		{1000, "bad \xff reason"}, {4000, "\xed\xa0\x80"},
	} {
		t.Run(fmt.Sprintf("%d %q", tc.code, tc.reason), func(t *testing.T) {
			c := dialRaw(t, srv)
			reqs <- tc
			c.send(text("close now"))
			if err := <-errs; err == nil {
				t.Errorf("Conn.Close(%d, %q) returned nil", tc.code, tc.reason)
			}
			c.probe() // nothing was sent, and the connection is open
		})
	}
	t.Run("valid code still works", func(t *testing.T) {
		c := dialRaw(t, srv)
		reqs <- closeReq{3000, "κόσμε"}
		c.send(text("close now"))
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
		if reason := c.expectCloseFrame(3000); reason != "κόσμε" {
			t.Fatalf("reason %q", reason)
		}
	})
}

// TestRFC6455_7_4_1_ShutdownSendsGoingAway: 1001 "indicates that an
// endpoint is 'going away', such as a server going down" (§7.4.1).
// Shutdown closes every connection with it and waits for the closing
// handshakes; meanwhile it takes no new connection.
func TestRFC6455_7_4_1_ShutdownSendsGoingAway(t *testing.T) {
	srv, err := gateway.NewServer(gateway.Config{Addr: "127.0.0.1:0", Loops: 2, PingInterval: -1}, gateway.Echo{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	t.Cleanup(func() { srv.Shutdown(ctx) }) // if the test fails early
	raw := []*rawClient{dialRaw(t, srv), dialRaw(t, srv)}
	g, _, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for _, c := range raw {
		c.probe() // both are open before the shutdown starts
	}

	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(ctx) }()
	for _, c := range raw {
		c.expectCloseFrame(1001)
	}
	if _, _, err := g.ReadMessage(); !gorilla.IsCloseError(err, gorilla.CloseGoingAway) {
		t.Fatalf("gorilla: %v, want close 1001", err)
	}
	// raw[1] has not answered, so the server is still shutting down: it
	// takes no new connection (its listener is shut).
	if late, err := net.DialTimeout("tcp", srv.Addr().String(), 5*time.Second); err == nil {
		late.Close()
		t.Fatal("a new connection was accepted during the shutdown")
	}
	for _, c := range raw {
		c.send(closeMsg(1001, ""))
		c.expectTCPClosed()
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}

// TestRFC6455_5_5_1_CloseAnswerAfterPendingOutput: "If an endpoint receives
// a Close frame and did not previously send a Close frame, the endpoint
// MUST send a Close frame in response" (§5.5.1). Here the client closes
// while the server still holds megabytes of echoes it has not been able to
// write (the client reads slowly). Every echo the server accepted must
// still arrive whole, then the close answer, then the end of TCP. The
// outbound bound is raised so that 16 MiB can wait in the server; at its
// default (1 MiB) the same can happen with less, but then the kernel's
// socket buffers hide it on loopback.
func TestRFC6455_5_5_1_CloseAnswerAfterPendingOutput(t *testing.T) {
	srv := startConformance(t, gateway.Config{MaxOutbound: 64 << 20, MailboxBytes: 32 << 20}, gateway.Echo{})
	// A small receive buffer keeps most of the echoes in the server.
	c := dialSmallWindow(t, srv)
	const n = 16
	p := binaryPayload(1 << 20)
	for range n {
		c.send(binaryMsg(p))
	}
	// Wait until the server has queued every echo: 16 MiB, far more than
	// the kernel buffers between the two sockets hold.
	for deadline := time.Now().Add(20 * time.Second); srv.Stats().MessagesOut < n; {
		if time.Now().After(deadline) {
			t.Fatalf("the server queued %d echoes of %d", srv.Stats().MessagesOut, n)
		}
		time.Sleep(time.Millisecond)
	}
	c.send(closeMsg(1000, "bye"))
	for i := range n {
		f, err := c.tryNext()
		if err != nil {
			t.Fatalf("echo %d of %d: %v (the server closed with output still queued)", i+1, n, err)
		}
		if f.op != opBinary || !bytes.Equal(f.data, p) {
			t.Fatalf("echo %d: got %s", i+1, f)
		}
	}
	c.expectCloseFrame(1000)
	c.expectTCPClosed()
}
