package codec

import (
	"testing"

	"github.com/gobwas/ws"
)

// noAllocs fails the test if f allocates. These are the zero-allocation
// claims of the package doc, enforced.
func noAllocs(t *testing.T, name string, f func()) {
	t.Helper()
	if raceEnabled {
		t.Skip("the race detector allocates on its own")
	}
	if n := testing.AllocsPerRun(200, f); n != 0 {
		t.Errorf("%s: %v allocations per run; want 0", name, n)
	}
}

func TestFrameNoAllocs(t *testing.T) {
	frame := m(0b1000_0010, 0b1111_1110, 0x01, 0x00)
	payload := make([]byte, 1024)
	buf := make([]byte, 0, 4096)
	var arr [MaxHeaderSize]byte
	h := ws.Header{Fin: true, OpCode: ws.OpBinary, Length: 70000, Masked: true, Mask: mask}

	noAllocs(t, "ParseHeader", func() {
		if _, n, err := ParseHeader(frame, RoleServer, 0); n == 0 || err != nil {
			t.Fatal(err)
		}
	})
	noAllocs(t, "ParseHeader error", func() {
		if _, _, err := ParseHeader([]byte{0xff, 0xff}, RoleServer, 0); err == nil {
			t.Fatal("no error")
		}
	})
	noAllocs(t, "PutHeader", func() { PutHeader(arr[:], h) })
	noAllocs(t, "AppendHeader into capacity", func() { buf = AppendHeader(buf[:0], h) })
	noAllocs(t, "AppendFrame into capacity", func() { buf = AppendFrame(buf[:0], ws.OpText, true, payload) })
	noAllocs(t, "AppendFrameMasked into capacity", func() { buf = AppendFrameMasked(buf[:0], ws.OpText, true, payload, mask) })
	noAllocs(t, "NewMaskKey", func() { _ = NewMaskKey() })
	noAllocs(t, "Cipher", func() { Cipher(payload[3:], mask, 3) })
}

func TestUTF8AndCloseNoAllocs(t *testing.T) {
	text := []byte("h\u00e9llo w\u00f6rld \u20ac\U0001F600 plain ascii tail")
	closePayload := []byte("\x03\xe8caf\u00e9")
	buf := make([]byte, 0, 256)
	var v UTF8

	noAllocs(t, "UTF8.Write", func() {
		v.Reset()
		if !v.Write(text[:7]) || !v.Write(text[7:]) || !v.Complete() {
			t.Fatal("invalid")
		}
	})
	noAllocs(t, "ParseCloseUnsafe", func() {
		if _, _, err := ParseCloseUnsafe(closePayload); err != nil {
			t.Fatal(err)
		}
	})
	noAllocs(t, "AppendClose into capacity", func() { buf = AppendClose(buf[:0], ws.StatusGoingAway, "server restart") })
	noAllocs(t, "AppendCloseMasked into capacity", func() { buf = AppendCloseMasked(buf[:0], 4000, "bye", mask) })
	noAllocs(t, "CloseCode", func() {
		if CloseCode(ErrInvalidUTF8) != ws.StatusInvalidFramePayloadData {
			t.Fatal("code")
		}
	})
}

func TestHandshakeNoAllocs(t *testing.T) {
	in := []byte(req("GET /chat?room=7 HTTP/1.1",
		"Host: server.example.com",
		"Upgrade: websocket",
		"Connection: keep-alive, Upgrade",
		"Sec-WebSocket-Key: "+rfcKey,
		"Origin: http://example.com",
		"Sec-WebSocket-Protocol: chat, superchat",
		"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
		"Sec-WebSocket-Version: 13"))
	out := make([]byte, 0, 1024)
	protos := make([][]byte, 0, 8)
	longKey := make([]byte, 100)
	var r Request

	noAllocs(t, "Request.Parse+CheckUpgrade+AcceptKey+AppendUpgradeResponse", func() {
		r.Reset()
		if n, err := r.Parse(in, 0); n == 0 || err != nil {
			t.Fatal(err)
		}
		if err := r.CheckUpgrade(); err != nil {
			t.Fatal(err)
		}
		_ = AcceptKey(r.Key())
		_ = AcceptKey(longKey)
		out = AppendUpgradeResponse(out[:0], r.Key(), []byte("chat"), nil)
	})
	noAllocs(t, "Request.Parse in pieces", func() {
		r.Reset()
		for _, k := range []int{1, 20, 100, 170, len(in)} {
			if _, err := r.Parse(in[:k], 0); err != nil {
				t.Fatal(err)
			}
		}
	})
	noAllocs(t, "Protocols into capacity", func() {
		if protos = r.Protocols(protos[:0]); len(protos) != 2 {
			t.Fatal(len(protos))
		}
	})
	noAllocs(t, "Extensions into capacity", func() { protos = r.Extensions(protos[:0]) })
	noAllocs(t, "views and Header", func() {
		_, _, _, _ = r.Path(), r.Query(), r.Origin(), r.Raw()
		if r.Header("origin") == nil {
			t.Fatal("no origin")
		}
	})
	noAllocs(t, "refusal", func() {
		out = AppendHandshakeError(out[:0], ErrHandshakeBadVersion, []byte("Retry-After: 5\r\n"))
		_ = HandshakeStatus(ErrHandshakeBadKey)
	})
	noAllocs(t, "AppendHTTPResponse into capacity", func() {
		out = AppendHTTPResponse(out[:0], 200, "text/plain", nil, []byte("ok\n"), false)
	})
}

func TestClientNoAllocs(t *testing.T) {
	key := []byte(rfcKey)
	in := []byte(resp("HTTP/1.1 101 Switching Protocols", "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Accept: "+rfcAccept, "Sec-WebSocket-Protocol: chat"))
	out := make([]byte, 0, 512)
	protocols := []string{"chat", "superchat"}
	var r Response

	noAllocs(t, "Response.Parse+Check", func() {
		r.Reset()
		if n, err := r.Parse(in, 0); n == 0 || err != nil {
			t.Fatal(err)
		}
		if err := r.Check(key); err != nil {
			t.Fatal(err)
		}
	})
	noAllocs(t, "AppendClientRequest into capacity", func() {
		out = AppendClientRequest(out[:0], "example.com", "/ws", key, protocols, nil)
	})
	noAllocs(t, "NewClientKey", func() { _ = NewClientKey() })
}
