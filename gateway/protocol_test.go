package gateway_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// Protocol rules through a real socket, with bytes no library would send.

func TestFragmentedTextWithPings(t *testing.T) {
	// Server pings off: one landing between the frames read below would
	// break the exact sequence.
	srv := startServer(t, gateway.Config{PingInterval: -1}, gateway.Echo{})
	c := dialRaw(t, srv)
	c.frame(ws.OpText, false, []byte("Hello, "))
	c.frame(ws.OpPing, true, []byte("ping-1"))
	c.frame(ws.OpContinuation, false, []byte("wörld"))
	c.frame(ws.OpPing, true, []byte("ping-2"))
	c.frame(ws.OpContinuation, true, []byte("!"))
	for _, want := range []string{"ping-1", "ping-2"} {
		h, p, err := c.readFrame()
		if err != nil {
			t.Fatal(err)
		}
		if h.OpCode != ws.OpPong || string(p) != want {
			t.Fatalf("got opcode %v %q, want pong %q", h.OpCode, p, want)
		}
	}
	op, msg := c.readMessage()
	if op != ws.OpText || string(msg) != "Hello, wörld!" {
		t.Fatalf("got %v %q", op, msg)
	}
}

func TestCloseCodes(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	valid := []ws.StatusCode{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999}
	for _, code := range valid {
		t.Run(fmt.Sprint(code)+"/echoed", func(t *testing.T) {
			c := dialRaw(t, srv)
			c.frame(ws.OpClose, true, codec.AppendClose(nil, code, "reason")[2:])
			c.expectClose(code)
		})
	}
	invalid := []ws.StatusCode{0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535}
	for _, code := range invalid {
		t.Run("invalid/"+fmt.Sprint(code), func(t *testing.T) {
			c := dialRaw(t, srv)
			c.frame(ws.OpClose, true, []byte{byte(code >> 8), byte(code)})
			c.expectClose(ws.StatusProtocolError)
		})
	}
	t.Run("empty payload answered with 1000", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpClose, true, nil)
		c.expectClose(ws.StatusNormalClosure)
	})
	t.Run("one byte payload", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpClose, true, []byte{0x03})
		c.expectClose(ws.StatusProtocolError)
	})
	t.Run("bad UTF-8 reason", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpClose, true, []byte{0x03, 0xe8, 0xff, 0xfe})
		c.expectClose(ws.StatusInvalidFramePayloadData)
	})
}

func TestInvalidUTF8(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	t.Run("whole message", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpText, true, []byte("ok \xc0\xaf"))
		c.expectClose(ws.StatusInvalidFramePayloadData)
	})
	t.Run("split across frames", func(t *testing.T) {
		c := dialRaw(t, srv)
		// U+1F600 is F0 9F 98 80: valid when joined, so the bad byte
		// is the one after it.
		c.frame(ws.OpText, false, []byte("smile \xf0\x9f"))
		c.frame(ws.OpContinuation, false, []byte("\x98\x80 and \xed"))
		c.frame(ws.OpContinuation, true, []byte("\xa0\x80")) // a surrogate
		c.expectClose(ws.StatusInvalidFramePayloadData)
	})
	t.Run("fails fast before the message ends", func(t *testing.T) {
		c := dialRaw(t, srv)
		// The first fragment already holds an invalid byte; the final
		// fragment is never sent, and the close must still come.
		c.frame(ws.OpText, false, []byte("abc\xff"))
		c.expectClose(ws.StatusInvalidFramePayloadData)
	})
	t.Run("truncated at the end", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpText, false, []byte("abc"))
		c.frame(ws.OpContinuation, true, []byte("\xe2\x82"))
		c.expectClose(ws.StatusInvalidFramePayloadData)
	})
	t.Run("valid multibyte split in a rune", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpText, false, []byte("\xe2"))
		c.frame(ws.OpContinuation, false, []byte("\x82"))
		c.frame(ws.OpContinuation, true, []byte("\xac"))
		if _, msg := c.readMessage(); string(msg) != "€" {
			t.Fatalf("got %q", msg)
		}
	})
}

func TestProtocolErrors(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	cases := []struct {
		name string
		send func(c *rawClient)
	}{
		{"rsv1", func(c *rawClient) { c.frameRsv(ws.OpText, codec.Rsv1, []byte("x")) }},
		{"rsv2", func(c *rawClient) { c.frameRsv(ws.OpText, codec.Rsv2, []byte("x")) }},
		{"rsv3", func(c *rawClient) { c.frameRsv(ws.OpBinary, codec.Rsv3, []byte("x")) }},
		{"opcode 3", func(c *rawClient) { c.frame(3, true, nil) }},
		{"opcode 7", func(c *rawClient) { c.frame(7, true, nil) }},
		{"opcode 0xB", func(c *rawClient) { c.frame(0xB, true, nil) }},
		{"opcode 0xF", func(c *rawClient) { c.frame(0xF, true, []byte("x")) }},
		{"unmasked", func(c *rawClient) { c.unmaskedFrame(ws.OpText, []byte("hello")) }},
		{"fragmented ping", func(c *rawClient) { c.frame(ws.OpPing, false, nil) }},
		{"ping over 125", func(c *rawClient) { c.frame(ws.OpPing, true, bytes.Repeat([]byte("p"), 126)) }},
		{"continuation first", func(c *rawClient) { c.frame(ws.OpContinuation, true, []byte("x")) }},
		{"text inside fragmented", func(c *rawClient) {
			c.frame(ws.OpText, false, []byte("a"))
			c.frame(ws.OpText, true, []byte("b"))
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, srv)
			tc.send(c)
			c.expectClose(ws.StatusProtocolError)
		})
	}
}

func TestMessageTooBig(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxMessageSize: 1000}, gateway.Echo{})
	t.Run("one frame", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpBinary, true, make([]byte, 1001))
		c.expectClose(ws.StatusMessageTooBig)
	})
	t.Run("fragments", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpBinary, false, make([]byte, 600))
		c.frame(ws.OpContinuation, true, make([]byte, 401))
		c.expectClose(ws.StatusMessageTooBig)
	})
	t.Run("at the limit", func(t *testing.T) {
		c := dialRaw(t, srv)
		c.frame(ws.OpBinary, false, make([]byte, 600))
		c.frame(ws.OpContinuation, true, make([]byte, 400))
		if _, msg := c.readMessage(); len(msg) != 1000 {
			t.Fatalf("got %d bytes", len(msg))
		}
	})
	t.Run("header alone is enough", func(t *testing.T) {
		// A frame that announces 1 GiB is refused from its header, before
		// any payload is sent or buffered.
		c := dialRaw(t, srv)
		h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 1 << 30, Masked: true, Mask: c.key}
		c.writeRaw(codec.AppendHeader(nil, h))
		c.expectClose(ws.StatusMessageTooBig)
	})
}

func TestCloseReasonIsText(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxMessageSize: 10}, gateway.Echo{})
	c := dialRaw(t, srv)
	c.frame(ws.OpText, true, []byte(strings.Repeat("x", 11)))
	h, p, err := c.readFrame()
	if err != nil || h.OpCode != ws.OpClose {
		t.Fatalf("want close frame, got %v %v", h.OpCode, err)
	}
	if _, reason, err := codec.ParseCloseUnsafe(p); err != nil || !strings.Contains(string(reason), "too big") {
		t.Fatalf("reason %q, err %v", reason, err)
	}
}
