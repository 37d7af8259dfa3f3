package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// RFC 6455 §5.2: "RSV1, RSV2, RSV3: MUST be 0 unless an extension is
// negotiated that defines meanings for non-zero values. If a nonzero value
// is received and none of the negotiated extensions defines the meaning of
// such a nonzero value, the receiving endpoint MUST _Fail the WebSocket
// Connection_." and "If an unknown opcode is received, the receiving
// endpoint MUST _Fail the WebSocket Connection_." Autobahn cases 3.1-3.7
// and 4.1.1-4.2.5. wsgate negotiates no extension, so every RSV bit is
// reserved.

// badFrameSetups are the ways a bad frame reaches the server: on its own,
// after a message whose echo the client has already read, and in one write
// between a message and a ping (Autobahn 3.3, 4.1.3). In the last, the
// message before the bad frame was received whole and valid: its echo must
// come before the close frame (what Autobahn calls strict), and the ping
// after the bad frame must never be answered.
var badFrameSetups = []struct {
	name string
	run  func(c *rawClient, bad ...wframe)
}{
	{"alone", func(c *rawClient, bad ...wframe) {
		c.send(bad...)
		c.expectFail(1002)
	}},
	{"after a valid message", func(c *rawClient, bad ...wframe) {
		c.send(text("valid"))
		c.expectMessage(opText, []byte("valid"))
		c.send(bad...)
		c.expectFail(1002)
	}},
	{"between a message and a ping, one write", func(c *rawClient, bad ...wframe) {
		frames := append([]wframe{text("valid")}, bad...)
		c.send(append(frames, ping("must not be answered"))...)
		c.expectFailAfterEcho(1002, text("valid"))
	}},
	{"between a message and a ping, byte by byte", func(c *rawClient, bad ...wframe) {
		frames := append([]wframe{text("valid")}, bad...)
		c.sendIn(byteByByte, nil, c.wire(append(frames, ping("must not be answered"))...))
		c.expectFailAfterEcho(1002, text("valid"))
	}},
}

// expectFailAfterEcho is expectFail after the echo of echo, which must
// come first: a message received whole before the bad frame is handled,
// and its reply written, before the close frame.
func (c *rawClient) expectFailAfterEcho(code uint16, echo wframe) {
	c.t.Helper()
	f := c.next()
	if f.op != echo.op || !f.fin || string(f.data) != string(echo.data) {
		c.t.Fatalf("got %s, want the echo of the message before the bad frame (Autobahn: non-strict)", f)
	}
	f = c.next()
	if f.op != opClose {
		c.t.Fatalf("got %s, want close %d", f, code)
	}
	if got, reason := closePayload(c.t, f.data); got != code {
		c.t.Fatalf("close code %d (%q), want %d", got, reason, code)
	}
	c.send(closeMsg(code, ""))
	c.expectTCPClosed()
}

func TestRFC6455_5_2_ReservedBits(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	kinds := []struct {
		name   string
		frames func(rsv byte) []wframe
	}{
		{"text", func(rsv byte) []wframe { f := text("rsv"); f.rsv = rsv; return []wframe{f} }},
		{"empty binary", func(rsv byte) []wframe { f := binaryMsg(nil); f.rsv = rsv; return []wframe{f} }},
		{"first fragment", func(rsv byte) []wframe {
			f := frag(opText, []byte("a"))
			f.rsv = rsv
			return []wframe{f, msg(opCont, []byte("b"))}
		}},
		{"continuation", func(rsv byte) []wframe {
			f := msg(opCont, []byte("b"))
			f.rsv = rsv
			return []wframe{frag(opBinary, []byte("a")), f}
		}},
		{"ping", func(rsv byte) []wframe { f := ping("rsv"); f.rsv = rsv; return []wframe{f} }},
		{"pong", func(rsv byte) []wframe { f := pong("rsv"); f.rsv = rsv; return []wframe{f} }},
		{"close", func(rsv byte) []wframe { f := closeMsg(1000, ""); f.rsv = rsv; return []wframe{f} }},
	}
	for _, k := range kinds {
		for rsv := byte(1); rsv <= 7; rsv++ {
			for _, setup := range badFrameSetups {
				t.Run(fmt.Sprintf("%s/RSV=%03b/%s", k.name, rsv, setup.name), func(t *testing.T) {
					setup.run(dialRaw(t, srv), k.frames(rsv)...)
				})
			}
		}
	}
}

func TestRFC6455_5_2_ReservedOpcodes(t *testing.T) {
	srv := startConformance(t, gateway.Config{}, gateway.Echo{})
	// 0x3-0x7 are reserved for further non-control frames, 0xB-0xF for
	// further control frames (§5.2, §11.8).
	for _, op := range []byte{3, 4, 5, 6, 7, 0xb, 0xc, 0xd, 0xe, 0xf} {
		for _, payload := range []string{"", "reserved"} {
			for _, setup := range badFrameSetups {
				t.Run(fmt.Sprintf("%#x/%d bytes/%s", op, len(payload), setup.name), func(t *testing.T) {
					setup.run(dialRaw(t, srv), msg(op, []byte(payload)))
				})
			}
		}
		t.Run(fmt.Sprintf("%#x/inside a fragmented message", op), func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(frag(opText, []byte("a")), msg(op, nil), msg(opCont, []byte("b")))
			c.expectFail(1002)
		})
		t.Run(fmt.Sprintf("%#x/FIN clear", op), func(t *testing.T) {
			c := dialRaw(t, srv)
			c.send(frag(op, []byte("a")), msg(opCont, []byte("b")))
			c.expectFail(1002)
		})
	}
}

// TestRFC6455_9_1_ExtensionsDeclined: with compression off the server negotiates no extension,
// so it must not answer an offer with Sec-WebSocket-Extensions (§4.2.2,
// §9.1), and RSV1, which permessage-deflate would define, stays reserved.
// Clients that offer compression fall back to plain frames.
func TestRFC6455_9_1_ExtensionsDeclined(t *testing.T) {
	// With --compression off every offer is declined, as before issue 13
	// (compression on is tested in compression*_test.go).
	srv := startConformance(t, gateway.Config{Compression: "off"}, gateway.Echo{})
	t.Run("raw offer, then RSV1", func(t *testing.T) {
		c := dialTCP(t, srv)
		key := codec.NewClientKey()
		offer := "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-webkit-deflate-frame\r\n"
		c.writeRaw(codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, []byte(offer)))
		status, resp := c.readHTTP()
		if status != 101 {
			t.Fatalf("status %d\n%s", status, resp)
		}
		if bytes.Contains(bytes.ToLower(resp), []byte("sec-websocket-extensions")) {
			t.Fatalf("the server accepted an extension it does not implement:\n%s", resp)
		}
		f := text("compressed?")
		f.rsv = 4 // RSV1
		c.send(f)
		c.expectFail(1002)
	})
	t.Run("gorilla with compression enabled", func(t *testing.T) {
		d := gorilla.Dialer{EnableCompression: true}
		c, resp, err := d.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
			t.Fatalf("extensions %q", ext)
		}
		p := textPayload(4096)
		if err := c.WriteMessage(gorilla.TextMessage, p); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
	})
	t.Run("coder with compression", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, _, err := coder.Dial(ctx, wsURL(srv), &coder.DialOptions{CompressionMode: coder.CompressionContextTakeover})
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		p := textPayload(4096)
		if err := c.Write(ctx, coder.MessageText, p); err != nil {
			t.Fatal(err)
		}
		if _, got, err := c.Read(ctx); err != nil || !bytes.Equal(got, p) {
			t.Fatalf("echo: %d bytes, %v", len(got), err)
		}
		if err := c.Close(coder.StatusNormalClosure, ""); err != nil {
			t.Fatal(err)
		}
	})
}
