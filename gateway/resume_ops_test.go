package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// Resumable sessions and the rest of the gateway: the backend's hooks,
// the admin API, admission refusals.

// What a resume costs the backend: the connect hook runs once per
// session, not per connection; a resume runs none; the disconnect hook
// runs once, when the window expires.
func TestResumeBackendHooks(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) { b.message = echoMessage })
	srv := startServer(t, gateway.Config{Backend: b.URL, ResumeWindow: time.Second, TimerTick: 10 * time.Millisecond}, nil)
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	c.WriteMessage(gorilla.TextMessage, []byte("Dhi"))
	if _, m := readMsg(t, c); m != "Dhi" {
		t.Fatalf("echo %q", m)
	}
	for i := 1; i <= 3; i++ {
		c.UnderlyingConn().Close()
		until(t, "the suspend", func() bool { return srv.Stats().Sessions.Suspended == 1 })
		c = mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+"."+strconv.Itoa(i))
		if h := hello(t, c); h.Get("status") != "resumed" {
			t.Fatalf("resume %d: %v", i, h)
		}
		c.WriteMessage(gorilla.TextMessage, []byte("Dhi"))
		if _, m := readMsg(t, c); m != "Dhi" {
			t.Fatalf("echo %q", m)
		}
	}
	b.mu.Lock()
	connects := len(b.connects)
	b.mu.Unlock()
	if connects != 1 {
		t.Fatalf("%d connect hooks for one session resumed 3 times", connects)
	}
	select {
	case ev := <-b.disconnects:
		t.Fatalf("disconnect hook before the session ended: %v", ev)
	default:
	}
	c.UnderlyingConn().Close()
	select {
	case ev := <-b.disconnects:
		if ev["reason"] != "resume window expired" {
			t.Fatalf("disconnect %v", ev)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no disconnect hook after the window")
	}
	time.Sleep(100 * time.Millisecond)
	select {
	case ev := <-b.disconnects:
		t.Fatalf("a second disconnect hook: %v", ev)
	default:
	}
}

// The admin API finds a session by its first connection's ID, also while
// it is suspended, and lists it once.
func TestResumeAdminWhileSuspended(t *testing.T) {
	srv := startServer(t, gateway.Config{Admin: "127.0.0.1:0"}, &sessionApp{})
	a := newAdminClient(t, srv, "")
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	var list []any
	until(t, "the connection listed", func() bool { // the 101 may arrive before the upgrade is complete
		list = a.json("GET", "/v1/connections", "", nil, 200)["connections"].([]any)
		return len(list) == 1
	})
	id := list[0].(map[string]any)["id"].(string)
	c.UnderlyingConn().Close()
	until(t, "the suspend", func() bool { return srv.Stats().Sessions.Suspended == 1 })
	if list := a.json("GET", "/v1/connections", "", nil, 200)["connections"].([]any); len(list) != 1 {
		t.Fatalf("while suspended, listed %v", list)
	}
	a.json("POST", "/v1/connections/"+id+"/messages", "text/plain", []byte("while away"), 202)
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+".0")
	if h := hello(t, n); h.Get("replay") != "1" {
		t.Fatalf("HELLO %v", h)
	}
	if _, m := readMsg(t, n); m != "Dwhile away" {
		t.Fatalf("replayed %q", m)
	}
	list = a.json("GET", "/v1/connections", "", nil, 200)["connections"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id {
		t.Fatalf("after the resume, listed %v", list)
	}
	a.json("POST", "/v1/connections/"+id+"/messages", "text/plain", []byte("back"), 202)
	if _, m := readMsg(t, n); m != "Dback" {
		t.Fatalf("pushed %q", m)
	}
}

// A push to the user of a suspended session is buffered for its resume,
// through the library (SendUser) and the admin API alike; a suspended
// session's anchor counts as one of the user's connections.
func TestResumeUserPushWhileSuspended(t *testing.T) {
	const secret = "push-secret"
	srv := startServer(t, gateway.Config{Admin: "127.0.0.1:0", JWTSecret: secret}, &sessionApp{})
	a := newAdminClient(t, srv, "")
	tok := hsToken(t, secret, jwt.RegisteredClaims{Subject: "ann", ExpiresAt: jwt.NewNumericDate(time.Now().Add(time.Hour))})
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "bearer."+tok)
	token := hello(t, c).Get("session")
	until(t, "the user's connection", func() bool { return len(srv.UserConns("ann", nil)) == 1 })
	c.UnderlyingConn().Close()
	until(t, "the suspend", func() bool { return srv.Stats().Sessions.Suspended == 1 })
	if n, err := srv.SendUser("ann", gateway.OpText, []byte("one")); n != 1 || err != nil {
		t.Fatalf("SendUser while suspended: %d %v", n, err)
	}
	if res := a.json("POST", "/v1/users/ann/messages", "text/plain", []byte("two"), 202); res["sent"] != 1.0 {
		t.Fatalf("admin push while suspended: %v", res)
	}
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "bearer."+tok, "wsgate.session."+token+".0")
	if h := hello(t, n); h.Get("status") != "resumed" || h.Get("replay") != "2" {
		t.Fatalf("HELLO %v", h)
	}
	for _, want := range []string{"Done", "Dtwo"} {
		if _, m := readMsg(t, n); m != want {
			t.Fatalf("replayed %q, want %q", m, want)
		}
	}
}

// An admission refusal of a request that offered the envelope is a 101
// and a close 1013 with the retry hint, which a browser can read; a plain
// request still gets 503 with Retry-After.
func TestResumeRefusalIsTryAgainLater(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxConns: 1}, &sessionApp{})
	hold := mustDial(t, wsURL(srv), nil)
	_ = hold
	if st := dialStatus(t, wsURL(srv), nil); st != 503 {
		t.Fatalf("plain: %d, want 503", st)
	}
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	if c.Subprotocol() != "wsgate.resume.v1" {
		t.Fatalf("answered %q", c.Subprotocol())
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, _, err := c.ReadMessage()
	ce, ok := err.(*gorilla.CloseError)
	if !ok || ce.Code != 1013 || ce.Text != "try again later; retry-after=5" {
		t.Fatalf("read: %v, want close 1013 with the hint", err)
	}
	if n := srv.Stats().Upgrades["503"]; n != 2 {
		t.Fatalf("503s counted: %d", n)
	}
}

// With --backend-resume-hook the backend hears of each resume, with the
// session's connection ID and user, and no other hook.
func TestResumeBackendResumedHook(t *testing.T) {
	b := newFakeBackend(t)
	resumed := make(chan map[string]any, 10)
	b.set(func(b *fakeBackend) {
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("/resumed", func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		json.NewDecoder(r.Body).Decode(&ev)
		resumed <- ev
		w.WriteHeader(http.StatusNoContent)
	})
	mux.Handle("/", b.Server.Config.Handler)
	front := httptest.NewServer(mux)
	t.Cleanup(front.Close)
	srv := startServer(t, gateway.Config{Backend: front.URL, BackendResumeHook: true, Admin: "127.0.0.1:0"}, nil)
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	var id string
	until(t, "the connection listed", func() bool {
		list := newAdminClient(t, srv, "").json("GET", "/v1/connections", "", nil, 200)["connections"].([]any)
		if len(list) == 1 {
			id = list[0].(map[string]any)["id"].(string)
		}
		return id != ""
	})
	c.UnderlyingConn().Close()
	until(t, "the suspend", func() bool { return srv.Stats().Sessions.Suspended == 1 })
	n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", "wsgate.session."+token+".0")
	if h := hello(t, n); h.Get("status") != "resumed" {
		t.Fatalf("HELLO %v", h)
	}
	select {
	case ev := <-resumed:
		if ev["id"] != id {
			t.Fatalf("resumed hook %v, want id %s", ev, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("no resumed hook")
	}
	b.mu.Lock()
	connects := len(b.connects)
	b.mu.Unlock()
	if connects != 1 || len(b.disconnects) != 0 {
		t.Fatalf("connects %d, disconnects %d", connects, len(b.disconnects))
	}
}

// A malformed session entry gets a new session and "invalid"; a seq
// ahead of the server's count too.
func TestResumeMalformedSessionEntries(t *testing.T) {
	srv := startServer(t, gateway.Config{}, &sessionApp{})
	c := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1")
	token := hello(t, c).Get("session")
	for _, entry := range []string{
		"wsgate.session.nodot",
		"wsgate.session." + token + ".-1",
		"wsgate.session." + token + ".x",
		"wsgate.session." + token + ".9007199254740992", // 2^53
		"wsgate.session.t!k.1",
		"wsgate.session." + token + ".5", // ahead of the server's 0
	} {
		n := mustDial(t, wsURL(srv), nil, "wsgate.resume.v1", entry)
		if h := hello(t, n); h.Get("status") != "missed" || h.Get("reason") != "invalid" || h.Get("session") == token {
			t.Fatalf("%s: HELLO %v", entry, h)
		}
		n.Close()
	}
	// The live session was not disturbed by any of them.
	c.WriteMessage(gorilla.TextMessage, []byte("Dstill"))
	if _, m := readMsg(t, c); m != "Dstill" {
		t.Fatalf("echo %q", m)
	}
}
