package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	coder "github.com/coder/websocket"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// jsonish returns n bytes of compressible text, a chat-event stream.
func jsonish(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, `{"type":"message","room":"lobby","seq":%d,"user":"user%d","text":"hello number %d"},`, i, i%17, i*31)
	}
	return b.Bytes()[:n]
}

var compressedLengths = []int{0, 1, 100, 511, 512, 1000, 4096, 65535, 65536, 300000, 1 << 20}

// TestCompressionGorilla: gorilla with EnableCompression negotiates
// permessage-deflate (no context takeover, the only mode it speaks), and
// every size echoes both ways compressed; Stats count the bytes.
func TestCompressionGorilla(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	d := gorilla.Dialer{EnableCompression: true, HandshakeTimeout: 5 * time.Second}
	c, resp, err := d.Dial(wsURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "permessage-deflate; server_no_context_takeover; client_no_context_takeover" {
		t.Fatalf("extensions answer %q", ext)
	}
	c.SetReadLimit(2 << 20)
	c.EnableWriteCompression(true)
	for _, typ := range []int{gorilla.TextMessage, gorilla.BinaryMessage} {
		for _, n := range compressedLengths {
			msg := jsonish(n)
			if err := c.WriteMessage(typ, msg); err != nil {
				t.Fatal(err)
			}
			gotType, got, err := c.ReadMessage()
			if err != nil {
				t.Fatalf("%d bytes: %v", n, err)
			}
			if gotType != typ || !bytes.Equal(got, msg) {
				t.Fatalf("echo of %d bytes (type %d): got %d bytes type %d", n, typ, len(got), gotType)
			}
		}
	}
	st := srv.Stats()
	if st.CompressionConns != 1 || st.CompressionUpgrades != 1 {
		t.Fatalf("CompressionConns %d, CompressionUpgrades %d, want 1, 1", st.CompressionConns, st.CompressionUpgrades)
	}
	// gorilla compresses every message; the server those of 512 bytes
	// and more (9 sizes of 11, per type).
	if st.CompressionInPlain == 0 || st.CompressionInWire*3 > st.CompressionInPlain {
		t.Fatalf("inbound: %d plain bytes arrived as %d compressed: want a ratio under 1/3", st.CompressionInPlain, st.CompressionInWire)
	}
	if st.CompressionOutWire*3 > st.CompressionOutPlain || st.Compressions < 14 || st.CompressionSkipped < 6 {
		t.Fatalf("outbound: %d plain, %d compressed, %d compressions, %d skipped", st.CompressionOutPlain, st.CompressionOutWire, st.Compressions, st.CompressionSkipped)
	}
}

// TestCompressionCoder: coder/websocket in both of its modes: no context
// takeover, and context takeover (it then offers plain
// "permessage-deflate", and the default configuration answers with no
// context takeover both ways, which it accepts). The server with
// --compression-context on keeps context with it where it may.
func TestCompressionCoder(t *testing.T) {
	for _, tc := range []struct {
		name string
		mode coder.CompressionMode
		ctx  string
	}{
		{"no-context", coder.CompressionNoContextTakeover, ""},
		{"client-context/server-default", coder.CompressionContextTakeover, ""},
		{"client-context/server-context", coder.CompressionContextTakeover, "on"},
		{"no-context/server-context", coder.CompressionNoContextTakeover, "on"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startServer(t, gateway.Config{CompressionContext: tc.ctx}, gateway.Echo{})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c, resp, err := coder.Dial(ctx, wsURL(srv), &coder.DialOptions{CompressionMode: tc.mode, CompressionThreshold: 1})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if ext := resp.Header.Get("Sec-WebSocket-Extensions"); !strings.HasPrefix(ext, "permessage-deflate") {
				t.Fatalf("extensions answer %q", ext)
			}
			c.SetReadLimit(2 << 20)
			// Repeat sizes so that context takeover has history to use.
			for round := 0; round < 3; round++ {
				for _, n := range compressedLengths {
					msg := jsonish(n)
					if err := c.Write(ctx, coder.MessageText, msg); err != nil {
						t.Fatal(err)
					}
					typ, got, err := c.Read(ctx)
					if err != nil {
						t.Fatalf("%d bytes: %v", n, err)
					}
					if typ != coder.MessageText || !bytes.Equal(got, msg) {
						t.Fatalf("echo of %d bytes: got %d bytes", n, len(got))
					}
				}
			}
			if err := c.Close(coder.StatusNormalClosure, ""); err != nil {
				t.Fatal(err)
			}
			st := srv.Stats()
			if st.CompressionUpgrades != 1 || st.CompressionOutWire == 0 || st.CompressionInWire == 0 {
				t.Fatalf("stats: %+v", st)
			}
		})
	}
}

// TestCompressionOff: --compression off declines every offer; gorilla then
// speaks plain WebSocket.
func TestCompressionOff(t *testing.T) {
	srv := startServer(t, gateway.Config{Compression: "off"}, gateway.Echo{})
	d := gorilla.Dialer{EnableCompression: true}
	c, resp, err := d.Dial(wsURL(srv), http.Header{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		t.Fatalf("compression off: extensions answer %q", ext)
	}
	msg := jsonish(4096)
	if err := c.WriteMessage(gorilla.TextMessage, msg); err != nil {
		t.Fatal(err)
	}
	if _, got, err := c.ReadMessage(); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %d bytes, %v", len(got), err)
	}
	if st := srv.Stats(); st.CompressionUpgrades != 0 || st.Compressions != 0 {
		t.Fatalf("compression off: %d upgrades, %d compressions", st.CompressionUpgrades, st.Compressions)
	}
}
