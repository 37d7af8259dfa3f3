package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// Helpers for the gateway surface: a real HTTP backend, the admin API, and
// gorilla clients with headers.

// fakeBackend is an httptest backend whose hooks the test sets; unset hooks
// answer 204. Every request is recorded.
type fakeBackend struct {
	*httptest.Server
	mu          sync.Mutex
	connect     func(w http.ResponseWriter, req map[string]any)
	message     func(w http.ResponseWriter, r *http.Request, body []byte)
	connects    []map[string]any
	disconnects chan map[string]any
}

func newFakeBackend(t *testing.T) *fakeBackend {
	b := &fakeBackend{disconnects: make(chan map[string]any, 100)}
	b.Server = httptest.NewServer(http.HandlerFunc(b.serve))
	t.Cleanup(b.Close)
	return b
}

func (b *fakeBackend) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Method != http.MethodPost {
		http.Error(w, "POST only", http.StatusMethodNotAllowed)
		return
	}
	b.mu.Lock()
	connect, message := b.connect, b.message
	b.mu.Unlock()
	switch r.URL.Path {
	case "/connect":
		var req map[string]any
		if err := json.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		b.mu.Lock()
		b.connects = append(b.connects, req)
		b.mu.Unlock()
		if connect != nil {
			connect(w, req)
			return
		}
	case "/message":
		if message != nil {
			message(w, r, body)
			return
		}
	case "/disconnect":
		var ev map[string]any
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		b.disconnects <- ev
	default:
		http.NotFound(w, r)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *fakeBackend) set(f func(b *fakeBackend)) {
	b.mu.Lock()
	f(b)
	b.mu.Unlock()
}

func (b *fakeBackend) lastConnect() map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.connects) == 0 {
		return nil
	}
	return b.connects[len(b.connects)-1]
}

// echoMessage is a message hook that answers with the body, its content
// type kept.
func echoMessage(w http.ResponseWriter, r *http.Request, body []byte) {
	w.Header().Set("Content-Type", r.Header.Get("Content-Type"))
	w.Write(body)
}

// adminClient calls a server's admin API.
type adminClient struct {
	t     testing.TB
	base  string
	token string
}

func newAdminClient(t testing.TB, srv *gateway.Server, token string) *adminClient {
	return &adminClient{t: t, base: "http://" + srv.AdminAddr().String(), token: token}
}

// do sends a request and returns the status and body.
func (a *adminClient) do(method, path, contentType string, body []byte) (int, []byte) {
	a.t.Helper()
	req, err := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusNoContent && !strings.HasPrefix(path, "/metrics") && !strings.HasPrefix(path, "/debug/") &&
		resp.Header.Get("Content-Type") != "application/json" {
		a.t.Fatalf("%s %s: %d with Content-Type %q: %s", method, path, resp.StatusCode, resp.Header.Get("Content-Type"), out)
	}
	return resp.StatusCode, out
}

// json sends a request, checks the status and decodes the JSON answer.
func (a *adminClient) json(method, path, contentType string, body []byte, want int) map[string]any {
	a.t.Helper()
	status, out := a.do(method, path, contentType, body)
	if status != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, out)
	}
	var v map[string]any
	if len(out) > 0 {
		if err := json.Unmarshal(out, &v); err != nil {
			a.t.Fatalf("%s %s: %v: %s", method, path, err, out)
		}
	}
	return v
}

// dialWS connects a gorilla client with headers and subprotocols, and
// returns it with the handshake's HTTP status.
func dialWS(t testing.TB, url string, h http.Header, protocols ...string) (*gorilla.Conn, *http.Response, error) {
	t.Helper()
	d := gorilla.Dialer{Subprotocols: protocols, HandshakeTimeout: 10 * time.Second}
	c, resp, err := d.Dial(url, h)
	if c != nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, resp, err
}

// mustDial connects and fails the test unless the upgrade succeeds.
func mustDial(t testing.TB, url string, h http.Header, protocols ...string) *gorilla.Conn {
	t.Helper()
	c, resp, err := dialWS(t, url, h, protocols...)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	return c
}

// dialStatus dials and returns the handshake's HTTP status (101 on success).
func dialStatus(t testing.TB, url string, h http.Header, protocols ...string) int {
	t.Helper()
	c, resp, err := dialWS(t, url, h, protocols...)
	if err == nil {
		c.Close()
		return 101
	}
	if resp == nil {
		t.Fatalf("dial %s: %v", url, err)
		return 0
	}
	return resp.StatusCode
}

// readMsg reads one message with a deadline.
func readMsg(t testing.TB, c *gorilla.Conn) (int, string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, msg, err := c.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, string(msg)
}
