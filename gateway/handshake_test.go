package gateway_test

import (
	"bytes"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

const goodHeaders = "Host: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"

func TestHandshakeRejections(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxHeaderBytes: 1024}, gateway.Echo{})
	cases := []struct {
		name    string
		req     string
		status  int
		wantHdr string // a header line the response must carry
	}{
		{"malformed request line", "GARBAGE\r\n\r\n", 400, ""},
		{"malformed header line", "GET /ws HTTP/1.1\r\nno colon here\r\n\r\n", 400, ""},
		{"HTTP/1.0", "GET /ws HTTP/1.0\r\n" + goodHeaders + "\r\n", 400, ""},
		{"missing Host", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "Host: example.com\r\n", "", 1) + "\r\n", 400, ""},
		{"not GET", "POST /ws HTTP/1.1\r\n" + goodHeaders + "\r\n", 405, ""},
		{"missing Upgrade", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "Upgrade: websocket\r\n", "", 1) + "\r\n", 426, "Sec-WebSocket-Version: 13"},
		{"Upgrade not websocket", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "Upgrade: websocket", "Upgrade: h2c", 1) + "\r\n", 426, "Sec-WebSocket-Version: 13"},
		{"Connection without Upgrade", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "Connection: Upgrade", "Connection: keep-alive", 1) + "\r\n", 400, ""},
		{"version 8", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "Version: 13", "Version: 8", 1) + "\r\n", 426, "Sec-WebSocket-Version: 13"},
		{"key of 15 bytes", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25jZQ", 1) + "\r\n", 400, ""},
		{"key not base64", "GET /ws HTTP/1.1\r\n" + strings.Replace(goodHeaders, "dGhlIHNhbXBsZSBub25jZQ==", "!!!!!!!!!!!!!!!!!!!!!!==", 1) + "\r\n", 400, ""},
		{"unknown path", "GET /other HTTP/1.1\r\n" + goodHeaders + "\r\n", 404, ""},
		{"header too large", "GET /ws HTTP/1.1\r\n" + goodHeaders + "X-Big: " + strings.Repeat("b", 1024) + "\r\n\r\n", 431, ""},
		{"upgrade with a body", "GET /ws HTTP/1.1\r\n" + goodHeaders + "Content-Length: 5\r\n\r\nhello", 400, ""},
		{"upgrade with chunked body", "GET /ws HTTP/1.1\r\n" + goodHeaders + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, ""},
		{"plain GET on the endpoint", "GET /ws HTTP/1.1\r\nHost: x\r\n\r\n", 426, "Sec-WebSocket-Version: 13"},
		{"no demo page configured", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dialTCP(t, srv)
			c.writeRaw([]byte(tc.req))
			status, resp := c.readHTTP()
			if status != tc.status {
				t.Fatalf("status %d, want %d\n%s", status, tc.status, resp)
			}
			if !bytes.Contains(resp, []byte("Connection: close")) && !bytes.Contains(resp, []byte("close\r\n")) {
				t.Errorf("response lacks Connection: close\n%s", resp)
			}
			if tc.wantHdr != "" && !bytes.Contains(resp, []byte(tc.wantHdr+"\r\n")) {
				t.Errorf("response lacks %q\n%s", tc.wantHdr, resp)
			}
			c.expectEOF()
		})
	}
}

func TestHealthzAndDemoPage(t *testing.T) {
	srv := startServer(t, gateway.Config{DemoPage: true, Path: "/chat"}, gateway.Echo{})
	base := "http://" + srv.Addr().String()
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	resp, err = http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("/: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Contains(body.Bytes(), []byte(`const path = "/chat";`)) {
		t.Fatalf("demo page does not connect to the configured path")
	}
}

func TestRequestOneByteAtATime(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	c := dialTCP(t, srv)
	key := codec.NewClientKey()
	req := codec.AppendClientRequest(nil, "example.com", "/ws", key[:], nil, nil)
	for i := range req {
		c.writeRaw(req[i : i+1])
		time.Sleep(time.Millisecond)
	}
	if status, resp := c.readHTTP(); status != 101 {
		t.Fatalf("status %d\n%s", status, resp)
	}
	c.frame(ws.OpText, true, []byte("after a slow handshake"))
	if _, msg := c.readMessage(); string(msg) != "after a slow handshake" {
		t.Fatalf("got %q", msg)
	}
}

func TestRequestAndFirstFrameInOneWrite(t *testing.T) {
	srv := startServer(t, gateway.Config{}, gateway.Echo{})
	c := dialTCP(t, srv)
	key := codec.NewClientKey()
	b := codec.AppendClientRequest(nil, "example.com", "/ws", key[:], nil, nil)
	b = codec.AppendFrameMasked(b, ws.OpText, true, []byte("eager"), c.key)
	c.writeRaw(b)
	if status, resp := c.readHTTP(); status != 101 {
		t.Fatalf("status %d\n%s", status, resp)
	}
	if _, msg := c.readMessage(); string(msg) != "eager" {
		t.Fatalf("got %q", msg)
	}
}

// hookHandler refuses one origin and picks a subprotocol.
type hookHandler struct {
	gateway.Echo
	mu   sync.Mutex
	subs []string
}

func (h *hookHandler) OnHandshake(r *gateway.Request) error {
	if string(r.Origin()) == "http://evil.example" {
		return gateway.ErrForbidden
	}
	switch string(r.Header("X-Token")) {
	case "bad":
		// Headers as http.Header; a bad name is left out, and a CR or LF
		// in a value cannot start a header of its own.
		return &gateway.HandshakeError{Status: 401, Reason: "unauthorized", Header: http.Header{
			"Www-Authenticate": {"Bearer"}, "Bad Name": {"x"}, "X-Note": {"a\r\nInjected: 1"},
		}}
	case "plain":
		return errors.New("an error that is no HandshakeError") // 403
	case "not-a-refusal":
		return &gateway.HandshakeError{Status: 200, Reason: "ok?"} // 403
	}
	if string(r.Header("X-Token")) == "panic" {
		panic("hook bug")
	}
	for _, p := range r.Protocols() {
		if string(p) == "chat.v2" {
			r.SelectProtocol("chat.v2")
		}
	}
	return nil
}

func (h *hookHandler) OnOpen(c *gateway.Conn) {
	h.mu.Lock()
	h.subs = append(h.subs, c.Subprotocol())
	h.mu.Unlock()
}

func TestHandshakeHook(t *testing.T) {
	h := &hookHandler{}
	srv := startServer(t, gateway.Config{}, h)
	t.Run("forbidden origin", func(t *testing.T) {
		_, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), http.Header{"Origin": {"http://evil.example"}})
		if err == nil || resp == nil || resp.StatusCode != 403 {
			t.Fatalf("want 403, got %v %v", resp, err)
		}
	})
	t.Run("unauthorized", func(t *testing.T) {
		_, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), http.Header{"X-Token": {"bad"}})
		if err == nil || resp == nil || resp.StatusCode != 401 {
			t.Fatalf("want 401, got %v %v", resp, err)
		}
		if resp.Header.Get("WWW-Authenticate") != "Bearer" || resp.Header.Get("X-Note") != "a  Injected: 1" ||
			resp.Header.Get("Injected") != "" || len(resp.Header["Bad Name"]) != 0 {
			t.Fatalf("headers %v", resp.Header)
		}
	})
	for _, token := range []string{"plain", "not-a-refusal"} {
		t.Run(token, func(t *testing.T) {
			_, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), http.Header{"X-Token": {token}})
			if err == nil || resp == nil || resp.StatusCode != 403 {
				t.Fatalf("want 403, got %v %v", resp, err)
			}
		})
	}
	t.Run("panicking hook", func(t *testing.T) {
		_, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), http.Header{"X-Token": {"panic"}})
		if err == nil || resp == nil || resp.StatusCode != 500 {
			t.Fatalf("want 500, got %v %v", resp, err)
		}
		if srv.Stats().HandlerPanics != 1 {
			t.Fatalf("HandlerPanics = %d", srv.Stats().HandlerPanics)
		}
	})
	t.Run("subprotocol", func(t *testing.T) {
		d := gorilla.Dialer{Subprotocols: []string{"chat.v1", "chat.v2"}}
		c, resp, err := d.Dial(wsURL(srv), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != "chat.v2" || c.Subprotocol() != "chat.v2" {
			t.Fatalf("selected %q / %q", got, c.Subprotocol())
		}
		c.WriteMessage(gorilla.TextMessage, []byte("x")) // OnOpen ran before this echo
		if _, _, err := c.ReadMessage(); err != nil {
			t.Fatal(err)
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if len(h.subs) != 1 || h.subs[0] != "chat.v2" {
			t.Fatalf("handler saw subprotocols %q", h.subs)
		}
	})
}
