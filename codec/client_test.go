package codec

import (
	"bytes"
	"io"
	"net/url"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

func TestNewClientKey(t *testing.T) {
	a, b := NewClientKey(), NewClientKey()
	if !validKey(a[:]) || !validKey(b[:]) || a == b {
		t.Fatalf("NewClientKey = %q, %q", a, b)
	}
	keys := map[[4]byte]bool{}
	for range 8 {
		keys[NewMaskKey()] = true
	}
	if len(keys) < 7 { // 8 random 32-bit keys: a repeat is a 1-in-100-million event
		t.Fatalf("NewMaskKey repeats itself: %d distinct of 8", len(keys))
	}
}

func TestAppendClientRequest(t *testing.T) {
	key := NewClientKey()
	raw := AppendClientRequest(nil, "example.com:80", "/chat?x=1", key[:], []string{"chat", "superchat"}, []byte("Origin: http://example.com\r\n"))
	var r Request
	if n, err := r.Parse(raw, 0); n != len(raw) || err != nil {
		t.Fatalf("Parse(%q) = %d, %v", raw, n, err)
	}
	if err := r.CheckUpgrade(); err != nil {
		t.Fatalf("CheckUpgrade: %v", err)
	}
	protos := r.Protocols(nil)
	if string(r.Host()) != "example.com:80" || string(r.Path()) != "/chat" || string(r.Query()) != "x=1" ||
		string(r.Key()) != string(key[:]) || string(r.Origin()) != "http://example.com" ||
		len(protos) != 2 || string(protos[0]) != "chat" || string(protos[1]) != "superchat" {
		t.Fatalf("views of %q wrong", raw)
	}
	raw = AppendClientRequest(nil, "h", "", key[:], nil, nil)
	if !strings.HasPrefix(string(raw), "GET / HTTP/1.1\r\n") || strings.Contains(string(raw), "Protocol") {
		t.Fatalf("empty uri, no protocols: %q", raw)
	}
}

// rwConn is an io.ReadWriter for the gobwas handshakes: reads come from in,
// writes go to out.
type rwConn struct {
	in  io.Reader
	out bytes.Buffer
}

func (c *rwConn) Read(p []byte) (int, error)  { return c.in.Read(p) }
func (c *rwConn) Write(p []byte) (int, error) { return c.out.Write(p) }

// TestClientRequestWithGobwasUpgrader has gobwas/ws's server accept our
// client request, then checks its answer with our Response.
func TestClientRequestWithGobwasUpgrader(t *testing.T) {
	key := NewClientKey()
	raw := AppendClientRequest(nil, "example.com", "/ws", key[:], []string{"v1", "chat"}, nil)
	conn := &rwConn{in: bytes.NewReader(raw)}
	u := ws.Upgrader{Protocol: func(p []byte) bool { return string(p) == "chat" }}
	if _, err := u.Upgrade(conn); err != nil {
		t.Fatalf("gobwas Upgrader refused %q: %v", raw, err)
	}
	var resp Response
	out := conn.out.Bytes()
	if n, err := resp.Parse(out, 0); n != len(out) || err != nil {
		t.Fatalf("Response.Parse(%q) = %d, %v", out, n, err)
	}
	if err := resp.Check(key[:]); err != nil || string(resp.Subprotocol()) != "chat" {
		t.Fatalf("Check = %v, subprotocol %q", err, resp.Subprotocol())
	}
}

// dialConn plays our server to gobwas/ws's Dialer: it parses what the
// dialer writes with Request and serves our upgrade response.
type dialConn struct {
	t    *testing.T
	req  Request
	in   []byte
	resp bytes.Reader
}

func (c *dialConn) Write(p []byte) (int, error) {
	c.in = append(c.in, p...)
	n, err := c.req.Parse(c.in, 0)
	if err != nil {
		c.t.Fatalf("Parse of the dialer's request: %v", err)
	}
	if n > 0 {
		if err := c.req.CheckUpgrade(); err != nil {
			c.t.Fatalf("CheckUpgrade of %q: %v", c.in, err)
		}
		protos := c.req.Protocols(nil)
		c.resp.Reset(AppendUpgradeResponse(nil, c.req.Key(), protos[len(protos)-1], nil))
	}
	return len(p), nil
}

func (c *dialConn) Read(p []byte) (int, error) { return c.resp.Read(p) }

func TestUpgradeResponseWithGobwasDialer(t *testing.T) {
	conn := &dialConn{t: t}
	u, _ := url.Parse("ws://example.com/ws?a=b")
	d := ws.Dialer{Protocols: []string{"v1", "chat"}}
	_, hs, err := d.Upgrade(conn, u)
	if err != nil {
		t.Fatalf("gobwas Dialer rejected our response: %v", err)
	}
	if hs.Protocol != "chat" || string(conn.req.Query()) != "a=b" {
		t.Fatalf("protocol %q, query %q", hs.Protocol, conn.req.Query())
	}
}
