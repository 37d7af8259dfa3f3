package gateway_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	gorilla "github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/gateway"
)

// Every answer of the backend is bounded: the connect hook's body (64 KiB)
// and meta (4 KiB), any answer's header block (64 KiB), a message hook's
// reply (Config.MaxMessageSize). Over a bound the hook has failed: the
// upgrade gets 503, the reply is not sent.
func TestBackendAnswerBounds(t *testing.T) {
	b := newFakeBackend(t)
	b.set(func(b *fakeBackend) {
		b.connect = func(w http.ResponseWriter, req map[string]any) {
			switch req["query"].(string) {
			case "body":
				w.Write([]byte(`{"user":"u","pad":"` + strings.Repeat("x", 64<<10) + `"}`))
			case "meta":
				w.Write([]byte(`{"meta":"` + strings.Repeat("x", 4<<10) + `"}`))
			case "header":
				w.Header().Set("X-Pad", strings.Repeat("x", 65<<10))
				w.WriteHeader(204)
			case "ok":
				w.Header().Set("X-Pad", strings.Repeat("x", 16<<10))
				w.Write([]byte(`{"meta":"` + strings.Repeat("x", 1<<10) + `"}`))
			}
		}
		b.message = func(w http.ResponseWriter, r *http.Request, body []byte) {
			n, _ := strconv.Atoi(string(body))
			w.Write([]byte(strings.Repeat("r", n)))
		}
	})
	srv := startServer(t, gateway.Config{Backend: b.URL, MaxMessageSize: 1000}, nil)
	for _, q := range []string{"body", "meta", "header"} {
		if got := dialStatus(t, wsURL(srv)+"?"+q, nil); got != 503 {
			t.Errorf("connect answer over its bound (%s): status %d, want 503", q, got)
		}
	}
	c := mustDial(t, wsURL(srv)+"?ok", nil)
	defer c.Close()
	// A reply over MaxMessageSize is dropped; the next one arrives.
	c.WriteMessage(gorilla.TextMessage, []byte("1001"))
	c.WriteMessage(gorilla.TextMessage, []byte("1000"))
	if _, msg := readMsg(t, c); len(msg) != 1000 {
		t.Fatalf("reply of %d bytes, want the 1000-byte one", len(msg))
	}
	if got := metricValue(t, srv, "wsgate_handshake_refusals_total", "reason", "backend_error"); got != 3 {
		t.Errorf("backend_error refusals: %v", got)
	}
}
