package gateway_test

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/testkit"
)

// The server side of resumable sessions (docs/resume.md) through real
// sockets, with gorilla/websocket speaking the envelope by hand, byte by
// byte as the spec writes it.

// sessionApp is an echo handler that counts opens and closes and keeps
// the connections it was given, for pushes.
type sessionApp struct {
	mu     sync.Mutex
	conns  []*gateway.Conn
	opens  atomic.Int64
	closes atomic.Int64
	last   atomic.Value // the last OnClose error
	protos atomic.Value // what a HandshakeHook saw offered
}

func (a *sessionApp) OnOpen(c *gateway.Conn) {
	a.opens.Add(1)
	a.mu.Lock()
	a.conns = append(a.conns, c)
	a.mu.Unlock()
}

func (a *sessionApp) OnMessage(c *gateway.Conn, op gateway.OpCode, data []byte) {
	_ = c.Send(op, data)
}

func (a *sessionApp) OnClose(c *gateway.Conn, err error) {
	a.closes.Add(1)
	a.last.Store(err)
}

func (a *sessionApp) conn(i int) *gateway.Conn {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.conns[i]
}

// chatApp selects "chat" in its own HandshakeHook.
type chatApp struct{ *sessionApp }

func (a chatApp) OnHandshake(r *gateway.Request) error {
	var seen []string
	for _, p := range r.Protocols() {
		seen = append(seen, string(p))
	}
	a.protos.Store(seen)
	r.SelectProtocol("chat")
	return nil
}

// hello reads HELLO, the first message, and returns its fields.
func hello(t *testing.T, c *gorilla.Conn) url.Values {
	t.Helper()
	typ, msg := readMsg(t, c)
	if typ != gorilla.TextMessage || !strings.HasPrefix(msg, "H") {
		t.Fatalf("first message %d %q, want HELLO", typ, msg)
	}
	v, err := url.ParseQuery(msg[1:])
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func until(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Until(t, what, cond)
}

func TestResumeHandshakeAndFraming(t *testing.T) {
	app := &sessionApp{}
	srv := startServer(t, gateway.Config{}, app)
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	if c.Subprotocol() != "wsgate.resume.v1" {
		t.Fatalf("answered %q", c.Subprotocol())
	}
	h := hello(t, c)
	if h.Get("status") != "new" || len(h.Get("session")) < 22 || h.Get("seq") != "0" || h.Get("in") != "0" ||
		h.Get("window") != "120000" || h.Get("buffer") != "65536" || h.Get("beat") != "30000" || h.Get("timeout") != "10000" {
		t.Fatalf("HELLO %v", h)
	}
	until(t, "OnOpen", func() bool { return app.opens.Load() == 1 })
	if p := app.conn(0).Subprotocol(); p != "" || !app.conn(0).Resumable() {
		t.Fatalf("app sees subprotocol %q, resumable %v", p, app.conn(0).Resumable())
	}
	// DATA both ways: the handler sees the payload without its type byte
	// and echoes it, with the opcode kept.
	c.WriteMessage(gorilla.TextMessage, []byte("Dhello"))
	c.WriteMessage(gorilla.BinaryMessage, []byte("D\x00\xff"))
	c.WriteMessage(gorilla.TextMessage, []byte("D"))
	for _, want := range []struct {
		typ int
		msg string
	}{{gorilla.TextMessage, "Dhello"}, {gorilla.BinaryMessage, "D\x00\xff"}, {gorilla.TextMessage, "D"}} {
		if typ, msg := readMsg(t, c); typ != want.typ || msg != want.msg {
			t.Fatalf("got %d %q, want %d %q", typ, msg, want.typ, want.msg)
		}
	}
	// An ACK of what it has is taken silently; one beyond is a protocol
	// error (1002).
	c.WriteMessage(gorilla.TextMessage, []byte("Aseq=3"))
	c.WriteMessage(gorilla.TextMessage, []byte("Aseq=4"))
	expectGorillaClose(t, c, 1002)
}

func TestResumeBadEnvelopeMessages(t *testing.T) {
	srv := startServer(t, gateway.Config{}, &sessionApp{})
	for _, m := range []struct {
		name string
		typ  int
		msg  string
	}{
		{"empty", gorilla.TextMessage, ""},
		{"unknown type", gorilla.TextMessage, "Xhello"},
		{"server's HELLO", gorilla.TextMessage, "Hstatus=new"},
		{"server's BEAT", gorilla.TextMessage, "Bseq=0&in=0"},
		{"ACK in a binary frame", gorilla.BinaryMessage, "Aseq=0"},
		{"ACK without seq", gorilla.TextMessage, "Anope=1"},
	} {
		t.Run(m.name, func(t *testing.T) {
			c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
			hello(t, c)
			c.WriteMessage(m.typ, []byte(m.msg))
			expectGorillaClose(t, c, 1002)
		})
	}
}

// expectGorillaClose reads until the server's close frame.
func expectGorillaClose(t *testing.T, c *gorilla.Conn, code int) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *gorilla.CloseError
		if !asClose(err, &ce) || ce.Code != code {
			t.Fatalf("read: %v, want close %d", err, code)
		}
		return
	}
}

func asClose(err error, ce **gorilla.CloseError) bool {
	e, ok := err.(*gorilla.CloseError)
	*ce = e
	return ok
}

// The envelope entries are hidden from a HandshakeHook; the answer
// carries the application's choice inside the envelope's entry.
func TestResumeWithApplicationProtocol(t *testing.T) {
	app := chatApp{&sessionApp{}}
	srv := startServer(t, gateway.Config{}, app)
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1+chat", "wsgate.resume.v1", "chat")
	if c.Subprotocol() != "wsgate.resume.v1+chat" {
		t.Fatalf("answered %q", c.Subprotocol())
	}
	hello(t, c)
	until(t, "OnOpen", func() bool { return app.opens.Load() == 1 })
	if p := app.conn(0).Subprotocol(); p != "chat" {
		t.Fatalf("app's subprotocol %q", p)
	}
	if seen := app.protos.Load().([]string); len(seen) != 1 || seen[0] != "chat" {
		t.Fatalf("the hook saw %q offered", seen)
	}
	// A client that offered only the plain entry gets a plain connection.
	p := mustDial(t, wsURL(srv), nil, "chat")
	if p.Subprotocol() != "chat" {
		t.Fatalf("plain: answered %q", p.Subprotocol())
	}
	p.WriteMessage(gorilla.TextMessage, []byte("plain"))
	if _, msg := readMsg(t, p); msg != "plain" {
		t.Fatalf("plain echo %q", msg)
	}
}

// On the JWT path the gateway used to answer the first offered entry
// that is not a token: it must not pick an envelope entry blindly.
func TestResumeOnJWTPath(t *testing.T) {
	const secret = "resume-secret"
	app := &sessionApp{}
	srv := startServer(t, gateway.Config{JWTSecret: secret}, app)
	tok := hsToken(t, secret, jwt.RegisteredClaims{Subject: "alice", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "bearer."+tok)
	if c.Subprotocol() != "wsgate.resume.v1" {
		t.Fatalf("answered %q", c.Subprotocol())
	}
	h := hello(t, c)
	token := h.Get("session")
	c.WriteMessage(gorilla.TextMessage, []byte("Dx"))
	readMsg(t, c) // its echo, DATA 1
	// Another user cannot take alice's session over with her token.
	bob := hsToken(t, secret, jwt.RegisteredClaims{Subject: "bob", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	b := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "bearer."+bob, "wsgate.session."+token+".1")
	if hb := hello(t, b); hb.Get("status") != "missed" || hb.Get("reason") != "user" || hb.Get("session") == token {
		t.Fatalf("bob's HELLO %v", hb)
	}
	// Alice's own resume takes the live session over: the old connection
	// gets 1008, the new one its HELLO with the counts.
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "bearer."+tok, "wsgate.session."+token+".1")
	hn := hello(t, n)
	if hn.Get("status") != "resumed" || hn.Get("seq") != "1" || hn.Get("in") != "1" || hn.Get("replay") != "0" {
		t.Fatalf("resumed HELLO %v", hn)
	}
	expectGorillaClose(t, c, 1008)
	until(t, "two sessions' OnOpen", func() bool { return app.opens.Load() == 2 })
	if app.closes.Load() != 0 {
		t.Fatalf("%d OnClose", app.closes.Load())
	}
}

// A session survives a cut: pushes while it is suspended are replayed
// after HELLO, in order, then live ones; the handler sees one logical
// connection. Past the window it gets exactly one OnClose, and a late
// resume is told "expired".
func TestResumeReplayAndExpiry(t *testing.T) {
	app := &sessionApp{}
	srv := startServer(t, gateway.Config{ResumeWindow: 2 * time.Second, TimerTick: 10 * time.Millisecond}, app)
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	until(t, "OnOpen", func() bool { return app.opens.Load() == 1 })
	a := app.conn(0)
	a.Send(gateway.OpText, []byte("one"))
	if _, msg := readMsg(t, c); msg != "Done" {
		t.Fatalf("got %q", msg)
	}
	c.UnderlyingConn().Close() // no close frame
	until(t, "the suspend", func() bool { return srv.Stats().Sessions.Suspended == 1 })
	for _, m := range []string{"two", "three"} {
		if err := a.Send(gateway.OpText, []byte(m)); err != nil {
			t.Fatalf("Send to a suspended session: %v", err)
		}
	}
	until(t, "buffered bytes", func() bool { return srv.Stats().Sessions.Buffered >= int64(len("twothree")) })
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+".1")
	h := hello(t, n)
	if h.Get("status") != "resumed" || h.Get("replay") != "2" || h.Get("session") != token {
		t.Fatalf("HELLO %v", h)
	}
	a.Send(gateway.OpText, []byte("four"))
	for _, want := range []string{"Dtwo", "Dthree", "Dfour"} {
		if _, msg := readMsg(t, n); msg != want {
			t.Fatalf("got %q, want %q", msg, want)
		}
	}
	if app.opens.Load() != 1 || app.closes.Load() != 0 {
		t.Fatalf("opens %d closes %d", app.opens.Load(), app.closes.Load())
	}
	n.UnderlyingConn().Close()
	until(t, "the expiry", func() bool { return srv.Stats().Sessions.Expired == 1 })
	until(t, "OnClose", func() bool { return app.closes.Load() == 1 })
	late := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+".4")
	if h := hello(t, late); h.Get("status") != "missed" || h.Get("reason") != "expired" || h.Get("session") == token {
		t.Fatalf("late HELLO %v", h)
	}
	until(t, "the new session's OnOpen", func() bool { return app.opens.Load() == 2 })
	time.Sleep(50 * time.Millisecond)
	if app.closes.Load() != 1 {
		t.Fatalf("%d OnClose, want exactly 1", app.closes.Load())
	}
	st := srv.Stats().Sessions
	if st.Resumes != 1 || st.Suspends != 2 || st.Replayed != 2 || st.Missed["expired"] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// A close 1000 from the client ends the session at once: one OnClose.
func TestResumeNormalCloseEnds(t *testing.T) {
	app := &sessionApp{}
	srv := startServer(t, gateway.Config{}, app)
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, "bye"))
	until(t, "OnClose", func() bool { return app.closes.Load() == 1 })
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+".0")
	if h := hello(t, n); h.Get("status") != "missed" || h.Get("reason") != "unknown" {
		t.Fatalf("HELLO %v", h)
	}
}

// With --resume-window off the envelope is still answered, without a
// session.
func TestResumeWindowOff(t *testing.T) {
	srv := startServer(t, gateway.Config{ResumeWindow: -1}, &sessionApp{})
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	h := hello(t, c)
	if h.Get("status") != "new" || h.Has("session") || h.Get("window") != "0" {
		t.Fatalf("HELLO %v", h)
	}
	c.WriteMessage(gorilla.TextMessage, []byte("Dping"))
	if _, msg := readMsg(t, c); msg != "Dping" {
		t.Fatalf("echo %q", msg)
	}
}

// GET /wsgate.js serves the JavaScript client as it is in client/js, and
// the demo page imports it.
func TestClientScriptRoute(t *testing.T) {
	srv := startServer(t, gateway.Config{DemoPage: true}, gateway.Echo{})
	want, err := os.ReadFile("../client/js/wsgate.js")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + srv.Addr().String() + "/wsgate.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" || string(body) != string(want) {
		t.Fatalf("/wsgate.js: %d %q, %d bytes (want %d)", resp.StatusCode, resp.Header.Get("Content-Type"), len(body), len(want))
	}
	resp, err = http.Get("http://" + srv.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), `from "/wsgate.js"`) {
		t.Fatal("the demo page does not import /wsgate.js")
	}
}
