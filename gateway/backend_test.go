package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	gorilla "github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/wsgate/wsgate/gateway"
)

// The connect hook accepts with a user, topics, a subprotocol and meta;
// the message hook sees them on every message and its answers come back
// in order.
func TestBackendConnectAndMessage(t *testing.T) {
	b := newFakeBackend(t)
	headers := make(chan http.Header, 10)
	b.set(func(b *fakeBackend) {
		b.connect = func(w http.ResponseWriter, req map[string]any) {
			json.NewEncoder(w).Encode(map[string]any{
				"user": "ann", "topics": []string{"news", "room:" + req["query"].(string)},
				"subprotocol": "v2", "meta": map[string]any{"plan": "pro"},
			})
		}
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			select {
			case headers <- r.Header.Clone():
			default:
			}
			echoMessage(w, r, body)
		}
	})
	srv := startServer(t, gateway.Config{Backend: b.URL}, nil)

	c := mustDial(t, wsURL(srv)+"?7", http.Header{"Origin": {"https://app.example"}, "X-Secret": {"no"}}, "v1", "v2")
	if p := c.Subprotocol(); p != "v2" {
		t.Fatalf("subprotocol %q", p)
	}
	req := b.lastConnect()
	if req["path"] != "/ws" || req["query"] != "7" || !slices.Equal(toStrings(req["protocols"]), []string{"v1", "v2"}) {
		t.Fatalf("connect request %v", req)
	}
	hdrs := req["headers"].(map[string]any)
	if hdrs["Origin"] != "https://app.example" || hdrs["X-Secret"] != nil || req["remote_addr"] == "" {
		t.Fatalf("connect request headers %v", req)
	}
	id, err := strconv.ParseUint(req["id"].(string), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	// The client may see the 101 a moment before the loop has registered
	// the connection for Lookup.
	waitFor(t, func() bool { return srv.Lookup(id) != nil })
	if srv.Subscribers("news") != 1 || srv.Subscribers("room:7") != 1 {
		t.Fatalf("subscribers: news %d, room:7 %d", srv.Subscribers("news"), srv.Subscribers("room:7"))
	}
	conn := srv.Lookup(id)
	if conn == nil || conn.User() != "ann" {
		t.Fatalf("Lookup(%d) = %v", id, conn)
	}

	// Messages go through the backend, in order, with their opcode.
	for i := range 20 {
		c.WriteMessage(gorilla.TextMessage, []byte(fmt.Sprint("m", i)))
	}
	c.WriteMessage(gorilla.BinaryMessage, []byte{0, 1, 2})
	for i := range 20 {
		if typ, msg := readMsg(t, c); typ != gorilla.TextMessage || msg != fmt.Sprint("m", i) {
			t.Fatalf("reply %d: %d %q", i, typ, msg)
		}
	}
	if typ, msg := readMsg(t, c); typ != gorilla.BinaryMessage || msg != "\x00\x01\x02" {
		t.Fatalf("binary reply: %d %q", typ, msg)
	}
	h := <-headers
	if h.Get(gateway.HeaderConnectionID) != req["id"] || h.Get(gateway.HeaderUser) != "ann" ||
		h.Get(gateway.HeaderMeta) != `{"plan":"pro"}` || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("message hook headers %v", h)
	}

	// 204 sends nothing; a JSON 200 is a text message.
	b.set(func(b *fakeBackend) {
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			if string(body) == "quiet" {
				w.WriteHeader(http.StatusNoContent)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"got":%q}`, body)
		}
	})
	c.WriteMessage(gorilla.BinaryMessage, []byte("quiet"))
	c.WriteMessage(gorilla.BinaryMessage, []byte("loud"))
	if typ, msg := readMsg(t, c); typ != gorilla.TextMessage || msg != `{"got":"loud"}` {
		t.Fatalf("after 204: %d %q", typ, msg)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// 401 and 403 reach the client; other refusals are 403; a failing backend
// is 503, or an accept with BackendFailOpen.
func TestBackendConnectRefusals(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) {
		b.connect = func(w http.ResponseWriter, req map[string]any) {
			code, _ := strconv.Atoi(req["query"].(string))
			w.WriteHeader(code)
			if code == 200 {
				w.Write([]byte(`{"subprotocol":"not-offered"}`))
			}
		}
	})
	srv := startServer(t, gateway.Config{Backend: b.URL}, nil)
	open := startServer(t, gateway.Config{Backend: b.URL, BackendFailOpen: true}, nil)
	for _, tc := range []struct{ backend, closed, open int }{
		{204, 101, 101},
		{401, 401, 401},
		{403, 403, 403},
		{404, 403, 403},
		{500, 503, 101},
		{302, 503, 101},
		{200, 503, 101}, // a subprotocol the client did not offer
	} {
		q := "?" + strconv.Itoa(tc.backend)
		if got := dialStatus(t, wsURL(srv)+q, nil); got != tc.closed {
			t.Errorf("backend %d: client got %d, want %d", tc.backend, got, tc.closed)
		}
		if got := dialStatus(t, wsURL(open)+q, nil); got != tc.open {
			t.Errorf("backend %d, fail open: client got %d, want %d", tc.backend, got, tc.open)
		}
	}
	if got := metricValue(t, srv, "wsgate_handshake_refusals_total", "reason", "backend_error"); got != 3 {
		t.Errorf("backend_error refusals: %v", got)
	}
	if got := metricValue(t, srv, "wsgate_backend_requests_total", "hook", "connect", "status", "500"); got != 1 {
		t.Errorf("connect requests with status 500: %v", got)
	}
}

// The disconnect hook hears the close code and reason, the user, the meta
// and the traffic counts.
func TestBackendDisconnect(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) {
		b.connect = func(w http.ResponseWriter, _ map[string]any) {
			w.Write([]byte(`{"user":"bob","meta":{"n":1}}`))
		}
		b.message = echoMessage
	})
	srv := startServer(t, gateway.Config{Backend: b.URL}, nil)
	c := mustDial(t, wsURL(srv), nil)
	c.WriteMessage(gorilla.TextMessage, []byte("hello"))
	readMsg(t, c)
	c.WriteMessage(gorilla.CloseMessage, gorilla.FormatCloseMessage(4001, "bye"))
	var ev map[string]any
	select {
	case ev = <-b.disconnects:
	case <-time.After(10 * time.Second):
		t.Fatal("no disconnect hook")
	}
	if ev["id"] != b.lastConnect()["id"] || ev["user"] != "bob" || ev["code"] != 4001.0 || ev["reason"] != "bye" ||
		ev["messages_in"] != 1.0 || ev["messages_out"] != 1.0 || ev["bytes_in"] != 5.0 ||
		fmt.Sprint(ev["meta"]) != "map[n:1]" {
		t.Fatalf("disconnect hook got %v", ev)
	}
}

// A backend that hangs on one connection's message holds that connection
// only: the others keep their round trips through the backend, the single
// event loop keeps upgrading, and the hung request ends at BackendTimeout,
// after which the connection's next message goes through.
func TestBackendHangDoesNotStall(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) {
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			if string(body) == "sleep" {
				select { // the 30 s nap, cut short when the gateway gives up
				case <-time.After(30 * time.Second):
				case <-r.Context().Done():
				}
				return
			}
			echoMessage(w, r, body)
		}
	})
	srv := startServer(t, gateway.Config{Backend: b.URL, Loops: 1, Workers: 4, BackendTimeout: time.Second}, nil)
	hung := mustDial(t, wsURL(srv), nil)
	hung.WriteMessage(gorilla.TextMessage, []byte("sleep"))
	hung.WriteMessage(gorilla.TextMessage, []byte("after"))
	waitFor(t, func() bool { return srv.Stats().PoolRunning >= 1 })

	var others []*gorilla.Conn
	for range 3 {
		others = append(others, mustDial(t, wsURL(srv), nil))
	}
	for round := range 20 {
		for i, c := range others {
			msg := fmt.Sprint(i, "/", round)
			c.WriteMessage(gorilla.TextMessage, []byte(msg))
			if _, got := readMsg(t, c); got != msg {
				t.Fatalf("echo: %q, want %q", got, msg)
			}
		}
	}
	if got := metricValue(t, srv, "wsgate_backend_requests_total", "hook", "message", "status", "timeout"); got > 0 {
		t.Fatalf("the hung request ended early: %v timeouts", got)
	}
	// The hung request times out; the connection's next message follows.
	if _, got := readMsg(t, hung); got != "after" {
		t.Fatalf("after the timeout: %q", got)
	}
	if got := metricValue(t, srv, "wsgate_backend_requests_total", "hook", "message", "status", "timeout"); got != 1 {
		t.Fatalf("timeouts: %v", got)
	}
}

// metricValue gathers srv's metrics and returns the value of the series
// of name with the given label pairs (a histogram's sample count), or -1.
func metricValue(t testing.TB, srv *gateway.Server, name string, labels ...string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(srv.Collector())
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				case m.Histogram != nil:
					return float64(m.Histogram.GetSampleCount())
				}
			}
		}
	}
	return -1
}

func hasLabels(m *dto.Metric, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == pairs[i] && l.GetValue() == pairs[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}
