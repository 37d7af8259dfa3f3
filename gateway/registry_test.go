package gateway_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// deferHook decides upgrades off the loop, as a backend hook would.
type deferHook struct {
	gateway.Echo
	mu     sync.Mutex
	opened []*gateway.Conn
}

func (h *deferHook) OnHandshake(r *gateway.Request) error {
	p := r.Defer()
	go func() {
		time.Sleep(20 * time.Millisecond) // a slow backend
		switch p.Header("X-User") {
		case "":
			p.Reject(&gateway.HandshakeError{Status: 401, Reason: "who?", Header: http.Header{"WWW-Authenticate": {"Bearer"}}})
		default:
			p.Accept(gateway.Accept{User: p.Header("X-User"), Topics: []string{"room:" + p.Query()}, Subprotocol: firstOr(p.Protocols())})
		}
	}()
	return nil
}

func firstOr(p []string) string {
	if len(p) > 0 {
		return p[0]
	}
	return ""
}

func (h *deferHook) OnOpen(c *gateway.Conn) {
	h.mu.Lock()
	h.opened = append(h.opened, c)
	h.mu.Unlock()
}

func TestDeferredHandshake(t *testing.T) {
	h := &deferHook{}
	srv := startServer(t, gateway.Config{}, h)
	ctx := context.Background()

	_, resp, err := gorilla.DefaultDialer.Dial(wsURL(srv), nil)
	if err == nil || resp == nil || resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("want 401 with WWW-Authenticate, got %v %v", resp, err)
	}

	var clients []*gorilla.Conn
	for _, user := range []string{"ann", "ann", "bob"} {
		d := gorilla.Dialer{Subprotocols: []string{"v1"}}
		c, resp, err := d.Dial(wsURL(srv)+"?lobby", http.Header{"X-User": {user}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if resp.Header.Get("Sec-WebSocket-Protocol") != "v1" {
			t.Fatalf("subprotocol %q", resp.Header.Get("Sec-WebSocket-Protocol"))
		}
		clients = append(clients, c)
	}
	// The topics from Accept are in place before OnOpen.
	if n := srv.Subscribers("room:lobby"); n != 3 {
		t.Fatalf("room:lobby has %d subscribers", n)
	}
	if conns := srv.UserConns("ann", nil); len(conns) != 2 {
		t.Fatalf("ann has %d connections", len(conns))
	}
	// A round trip, then the server-side view of it.
	clients[2].WriteMessage(gorilla.TextMessage, []byte("hi"))
	if _, msg, err := clients[2].ReadMessage(); err != nil || string(msg) != "hi" {
		t.Fatalf("echo: %q %v", msg, err)
	}
	bob := srv.UserConns("bob", nil)[0]
	if srv.Lookup(bob.ID()) != bob || srv.Lookup(bob.ID()+1<<40) != nil || srv.Lookup(0) != nil {
		t.Fatal("Lookup does not find exactly the connection by its ID")
	}
	info, err := bob.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.User != "bob" || info.Subprotocol != "v1" || len(info.Topics) != 1 || info.Topics[0] != "room:lobby" ||
		info.MessagesIn != 1 || info.MessagesOut != 1 || info.BytesIn != 2 || info.BytesOut != 4 {
		t.Fatalf("Info: %+v", info)
	}
	// Closing removes the connection from the registry and the user index.
	clients[2].WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(1000, ""))
	waitFor(t, func() bool { return srv.Lookup(bob.ID()) == nil && len(srv.UserConns("bob", nil)) == 0 })
	if _, err := bob.Info(ctx); err == nil {
		t.Fatal("Info of a closed connection succeeded")
	}
}

func TestListPagination(t *testing.T) {
	opened := make(chan *gateway.Conn, 100)
	srv := startServer(t, gateway.Config{Loops: 3}, gateway.HandlerFuncs{Open: func(c *gateway.Conn) {
		if c.ID()%2 == 0 {
			c.Subscribe("even")
		}
		opened <- c
	}})
	const n = 25
	want := map[uint64]bool{}
	even := 0
	for range n {
		dialRaw(t, srv)
		c := <-opened
		want[c.ID()] = true
		if c.ID()%2 == 0 {
			even++
		}
	}
	ctx := context.Background()
	seen := map[uint64]bool{}
	cursor, pages := "", 0
	for {
		page, next, err := srv.List(ctx, gateway.ListOptions{Limit: 7, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, ci := range page {
			if seen[ci.ID] || !want[ci.ID] {
				t.Fatalf("page %d: unexpected or repeated id %d", pages, ci.ID)
			}
			seen[ci.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != n || pages != 4 {
		t.Fatalf("listed %d of %d in %d pages", len(seen), n, pages)
	}
	page, _, err := srv.List(ctx, gateway.ListOptions{Topic: "even", Limit: 100})
	if err != nil || len(page) != even {
		t.Fatalf("topic filter: %d of %d, %v", len(page), even, err)
	}
	if _, _, err := srv.List(ctx, gateway.ListOptions{Cursor: "x"}); !errors.Is(err, gateway.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	_ = ws.OpText
}
