package gateway_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
	"github.com/wsgate/wsgate/internal/clock"
)

// adminServer starts a gateway with the admin API on a free port; each
// connection's user and topics come from its query: ?user=ann&topic=news.
func adminServer(t *testing.T, cfg gateway.Config) (*gateway.Server, *adminClient) {
	t.Helper()
	cfg.Admin = "127.0.0.1:0"
	srv := startServer(t, cfg, &queryUser{})
	return srv, newAdminClient(t, srv, cfg.AdminToken)
}

// queryUser is an echo app whose hook takes the user and a topic from the
// query string, on the loop.
type queryUser struct{ gateway.Echo }

func (queryUser) OnHandshake(r *gateway.Request) error {
	for kv := range strings.SplitSeq(string(r.Query()), "&") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "user":
			r.SetUser(v)
		}
	}
	return nil
}

// OnOpen tells the client its connection ID.
func (queryUser) OnOpen(c *gateway.Conn) { c.Send(gateway.OpText, []byte("id="+c.IDString())) }

// dialUser connects as user and returns the client and its connection ID.
func dialUser(t *testing.T, srv *gateway.Server, user string) (*gorilla.Conn, string) {
	t.Helper()
	c := mustDial(t, wsURL(srv)+"?user="+user, nil)
	_, msg := readMsg(t, c)
	id, ok := strings.CutPrefix(msg, "id=")
	if !ok {
		t.Fatalf("first message %q", msg)
	}
	return c, id
}

// Push to a connection, a user with three connections and a topic; read
// a connection; close one through the API.
func TestAdminPush(t *testing.T) {
	srv, a := adminServer(t, gateway.Config{})
	ann1, id1 := dialUser(t, srv, "ann")
	ann2, _ := dialUser(t, srv, "ann")
	ann3, _ := dialUser(t, srv, "ann")
	bob, bobID := dialUser(t, srv, "bob")
	bob.WriteMessage(gorilla.TextMessage, []byte("ping"))
	readMsg(t, bob)
	waitFor(t, func() bool { return len(srv.UserConns("ann", nil)) == 3 })

	res := a.json("POST", "/v1/connections/"+id1+"/messages", "text/plain", []byte("just you"), 202)
	if res["sent"] != 1.0 {
		t.Fatalf("push to a connection: %v", res)
	}
	if typ, msg := readMsg(t, ann1); typ != gorilla.TextMessage || msg != "just you" {
		t.Fatalf("ann1 got %d %q", typ, msg)
	}
	res = a.json("POST", "/v1/users/ann/messages", "application/octet-stream", []byte{1, 2}, 202)
	if res["connections"] != 3.0 || res["sent"] != 3.0 {
		t.Fatalf("push to a user: %v", res)
	}
	for _, c := range []*gorilla.Conn{ann1, ann2, ann3} {
		if typ, msg := readMsg(t, c); typ != gorilla.BinaryMessage || msg != "\x01\x02" {
			t.Fatalf("user push: %d %q", typ, msg)
		}
	}
	if res := a.json("POST", "/v1/users/nobody/messages", "text/plain", []byte("x"), 202); res["connections"] != 0.0 {
		t.Fatalf("push to an absent user: %v", res)
	}

	// Topics through the API.
	if status, _ := a.do("PUT", "/v1/connections/"+bobID+"/topics/room%2F1", "", nil); status != 204 {
		t.Fatalf("subscribe: %d", status)
	}
	waitFor(t, func() bool { return srv.Subscribers("room/1") == 1 })
	res = a.json("POST", "/v1/topics/room%2F1/messages", "application/json", []byte(`{"n":1}`), 202)
	if res["subscribers"] != 1.0 {
		t.Fatalf("publish: %v", res)
	}
	if typ, msg := readMsg(t, bob); typ != gorilla.TextMessage || msg != `{"n":1}` {
		t.Fatalf("topic push: %d %q", typ, msg)
	}
	info := a.json("GET", "/v1/connections/"+bobID, "", nil, 200)
	if info["id"] != bobID || info["user"] != "bob" || !strings.HasPrefix(info["remote_addr"].(string), "127.0.0.1:") ||
		info["messages_in"] != 1.0 || info["messages_out"] != 3.0 || info["bytes_in"] != 4.0 ||
		len(info["topics"].([]any)) != 1 || info["topics"].([]any)[0] != "room/1" || info["connected_at"] == "" {
		t.Fatalf("GET connection: %v", info)
	}
	if status, _ := a.do("DELETE", "/v1/connections/"+bobID+"/topics/room%2F1", "", nil); status != 204 {
		t.Fatalf("unsubscribe: %d", status)
	}
	waitFor(t, func() bool { return srv.Subscribers("room/1") == 0 })

	// Close through the API: the client hears the code and reason.
	a.json("DELETE", "/v1/connections/"+bobID+"?code=4000&reason=kicked", "", nil, 202)
	bob.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := bob.ReadMessage(); !gorilla.IsCloseError(err, 4000) || !strings.Contains(err.Error(), "kicked") {
		t.Fatalf("closed client saw %v", err)
	}
	waitFor(t, func() bool { s, _ := a.do("GET", "/v1/connections/"+bobID, "", nil); return s == 404 })

	// Errors are JSON with the right status.
	for _, tc := range []struct {
		method, path, ctype, body string
		want                      int
	}{
		{"POST", "/v1/connections/" + bobID + "/messages", "text/plain", "x", 404},
		{"POST", "/v1/connections/123/messages", "text/plain", "x", 404},
		{"POST", "/v1/connections/abc/messages", "text/plain", "x", 404},
		{"GET", "/v1/connections/" + bobID, "", "", 404},
		{"DELETE", "/v1/connections/" + id1 + "?code=1005", "", "", 400},
		{"DELETE", "/v1/connections/" + id1 + "?code=x", "", "", 400},
		{"POST", "/v1/connections/" + id1 + "/messages", "text/plain", "\xff", 400},
		{"POST", "/v1/connections/" + id1 + "/messages", "text/plain", strings.Repeat("x", 2<<20), 413},
		{"GET", "/v1/connections?cursor=zz", "", "", 400},
		{"GET", "/v1/connections?limit=0", "", "", 400},
		{"GET", "/v1/drain", "", "", 405},
		{"GET", "/v1/nothing", "", "", 404},
	} {
		status, body := a.do(tc.method, tc.path, tc.ctype, []byte(tc.body))
		if status != tc.want || !bytes.HasPrefix(body, []byte(`{"error":`)) {
			t.Errorf("%s %s: %d %s, want %d and a JSON error", tc.method, tc.path, status, body, tc.want)
		}
	}
	stats := a.json("GET", "/v1/stats", "", nil, 200)
	if stats["messages_out"].(float64) < 8 || stats["upgrades"].(map[string]any)["101"] != 4.0 {
		t.Fatalf("stats: %v", stats)
	}
}

// A connection that stops reading: the push that finds its outbound
// queue full is answered 429, and the connection stays (drop policy).
func TestAdminPushSlowConsumer(t *testing.T) {
	srv, a := adminServer(t, gateway.Config{MaxOutbound: 64 << 10, SlowPolicy: gateway.SlowDrop, PingInterval: -1})
	_, id := dialUser(t, srv, "slow")
	chunk := bytes.Repeat([]byte("x"), 32<<10)
	for i := 0; ; i++ {
		status, body := a.do("POST", "/v1/connections/"+id+"/messages", "application/octet-stream", chunk)
		if status == 429 {
			break
		}
		if status != 202 || i > 10000 {
			t.Fatalf("push %d: %d %s", i, status, body)
		}
	}
	a.json("GET", "/v1/connections/"+id, "", nil, 200)
}

// Pages of GET /v1/connections cover every connection once, each item
// with its id.
func TestAdminListPagination(t *testing.T) {
	srv, a := adminServer(t, gateway.Config{Loops: 3})
	want := map[string]bool{}
	for range 11 {
		_, id := dialUser(t, srv, "pager")
		want[id] = true
	}
	seen := map[string]bool{}
	cursor, pages := "", 0
	for {
		page := a.json("GET", "/v1/connections?limit=4&cursor="+cursor, "", nil, 200)
		pages++
		for _, x := range page["connections"].([]any) {
			id := x.(map[string]any)["id"].(string)
			if seen[id] || !want[id] {
				t.Fatalf("page %d: unexpected or repeated id %s", pages, id)
			}
			seen[id] = true
		}
		if cursor = page["next_cursor"].(string); cursor == "" {
			break
		}
	}
	if len(seen) != 11 || pages != 3 {
		t.Fatalf("listed %d of 11 in %d pages", len(seen), pages)
	}
}

// With a token, every admin path needs it.
func TestAdminToken(t *testing.T) {
	srv, a := adminServer(t, gateway.Config{AdminToken: "t0ken"})
	for _, path := range []string{"/v1/stats", "/metrics", "/debug/pprof/", "/v1/connections", "/nothing"} {
		for _, token := range []string{"", "wrong", "t0ken1"} {
			bad := &adminClient{t: t, base: a.base, token: token}
			if status, _ := bad.do("GET", path, "", nil); status != http.StatusUnauthorized {
				t.Errorf("GET %s with token %q: %d", path, token, status)
			}
		}
	}
	a.json("GET", "/v1/stats", "", nil, 200)
	if status, body := a.do("GET", "/debug/pprof/goroutine?debug=1", "", nil); status != 200 || !bytes.Contains(body, []byte("goroutine")) {
		t.Fatalf("pprof: %d", status)
	}
	_ = srv
}

// POST /v1/drain starts a drain: readiness fails, upgrades get 503, open
// connections are closed with 1001 over the window.
// The drain runs on a fake clock: the test steps through the window.
func TestAdminDrain(t *testing.T) {
	const window, step = 200 * time.Millisecond, 10 * time.Millisecond
	f := clock.NewFake(time.Unix(1_000_000_000, 0))
	srv, a := adminServer(t, gateway.Config{DrainWindow: window, TimerTick: step, Clock: f})
	if !f.WaitTickers(1, 10*time.Second) {
		t.Fatal("the server's ticker did not start")
	}
	c, _ := dialUser(t, srv, "d")
	res := a.json("POST", "/v1/drain", "", nil, 202)
	if res["draining"] != true || res["connections"] != 1.0 {
		t.Fatalf("drain: %v", res)
	}
	waitFor(t, srv.Draining)
	// Every close is due within the window; a few ticks more cover a
	// tick that ran before Drain read the clock.
	for d := time.Duration(0); d <= window+3*step; d += step {
		f.Advance(step)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, _, err := c.ReadMessage(); !gorilla.IsCloseError(err, gorilla.CloseGoingAway) {
		t.Fatalf("client saw %v, want 1001", err)
	}
	if status := dialStatus(t, wsURL(srv), nil); status != 503 {
		t.Fatalf("upgrade while draining: %d", status)
	}
	a.json("POST", "/v1/drain", "", nil, 409)
	if m := scrape(t, a); m["wsgate_draining"] != 1 || m[`wsgate_admission_refusals_total{reason="draining"}`] != 1 {
		t.Fatalf("metrics while draining: draining=%v refusals=%v", m["wsgate_draining"], m[`wsgate_admission_refusals_total{reason="draining"}`])
	}
}
