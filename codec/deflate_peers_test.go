package codec

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
	"github.com/gorilla/websocket"

	"github.com/wsgate/wsgate/internal/testkit"
)

// Real clients against the echo server of deflate_echo_test.go: negotiation
// with the offers they really send, and compressed messages both ways, with
// and without context takeover, fragmented, with a ping in between. The
// event loop is not involved; this is the codec's own interop check.

// checkCompressedBothWays fails unless the connection negotiated
// compression and carried compressed messages in both directions.
func checkCompressedBothWays(t *testing.T, st echoStats, wantAnswer string) {
	t.Helper()
	if st.err != nil {
		t.Fatalf("server: %v", st.err)
	}
	if !st.negotiated {
		t.Fatalf("no compression negotiated for offer %q", st.offer)
	}
	if got := string(st.agreed.AppendResponse(nil)); wantAnswer != "" && got != wantAnswer {
		t.Errorf("answered %q; want %q", got, wantAnswer)
	}
	if st.compressedIn == 0 || st.compressedOut == 0 {
		t.Fatalf("compressed messages: %d in, %d out, of %d", st.compressedIn, st.compressedOut, st.messages)
	}
	t.Logf("offer %q, answer %q: %d messages, %d compressed in, %d out",
		st.offer, st.agreed.AppendResponse(nil), st.messages, st.compressedIn, st.compressedOut)
}

// requireTool returns the path of a program the test needs, skipping when
// it is absent, except under CI, where .ci/run installs it.
func requireTool(t *testing.T, path, install string) string { return testkit.Need(t, path, install) }

func runPeer(t *testing.T, env []string, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("OK")) {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

func TestDeflatePeersPython(t *testing.T) {
	py := requireTool(t, "/usr/bin/python3", "apt-get install python3-websockets")
	if err := exec.Command(py, "-c", "import websockets").Run(); err != nil {
		testkit.Missing(t, "python3-websockets", "apt-get install python3-websockets")
	}
	cases := []struct {
		name   string
		cfg    DeflateConfig
		mode   string
		answer string
	}{
		{"default", DeflateConfig{}, "default", answerNoContext},
		{"context takeover", ctxConfig, "default", answerCtx12},
		{"server window 10", DeflateConfig{}, "window10", answerNoContext + "; server_max_window_bits=10"},
		{"server window 10, context takeover", ctxConfig, "window10", "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := startDeflateEcho(t, c.cfg)
			out := runPeer(t, nil, py, "testdata/deflate/peer_client.py", s.url(), c.mode)
			st := s.last(t)
			if c.mode == "default" && st.offer != offerChromium {
				t.Errorf("python3-websockets offers %q; the tables say %q", st.offer, offerChromium)
			}
			checkCompressedBothWays(t, st, c.answer)
			t.Log(strings.TrimSpace(out))
		})
	}
}

func TestDeflatePeersNode(t *testing.T) {
	node := testkit.Need(t, "node", "Debian's nodejs")
	wsModule, _ := filepath.Abs("../testdata/interop/node_modules/ws")
	requireTool(t, wsModule, "npm ci --prefix testdata/interop")
	for _, c := range []struct {
		name   string
		cfg    DeflateConfig
		answer string
	}{
		{"default", DeflateConfig{}, answerNoContext},
		{"context takeover", ctxConfig, answerCtx12},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startDeflateEcho(t, c.cfg)
			out := runPeer(t, []string{"WS_MODULE=" + wsModule}, node, "testdata/deflate/peer_client.cjs", s.url())
			st := s.last(t)
			if st.offer != offerChromium {
				t.Errorf("node ws offers %q; the tables say %q", st.offer, offerChromium)
			}
			checkCompressedBothWays(t, st, c.answer)
			t.Log(strings.TrimSpace(out))
		})
	}
}

// peerMessages are what the Go clients send: compressible text of several
// sizes, and incompressible binary.
func peerMessages() [][]byte {
	return [][]byte{jsonPayload(1<<10, 21), jsonPayload(16<<10, 22), textPayload(1<<20, 23), randomPayload(5000, 24), textPayload(700, 25)}
}

func TestDeflatePeersGorilla(t *testing.T) {
	for _, cfg := range []DeflateConfig{{}, ctxConfig} {
		t.Run(fmt.Sprintf("context=%v", cfg.ContextTakeover), func(t *testing.T) {
			s := startDeflateEcho(t, cfg)
			dialer := websocket.Dialer{EnableCompression: true, HandshakeTimeout: 10 * time.Second}
			conn, _, err := dialer.Dial(s.url(), nil)
			if err != nil {
				t.Fatal(err)
			}
			for i, m := range peerMessages() {
				typ := websocket.TextMessage
				if !ValidUTF8(m) {
					typ = websocket.BinaryMessage
				}
				if err := conn.WriteMessage(typ, m); err != nil {
					t.Fatal(err)
				}
				_, got, err := conn.ReadMessage()
				if err != nil || !bytes.Equal(got, m) {
					t.Fatalf("message %d: %d bytes back of %d, %v", i, len(got), len(m), err)
				}
			}
			_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
			_, _, _ = conn.ReadMessage()
			_ = conn.Close()
			st := s.last(t)
			if st.offer != offerGorilla {
				t.Errorf("gorilla offers %q; the tables say %q", st.offer, offerGorilla)
			}
			checkCompressedBothWays(t, st, answerNoContext)
		})
	}
}

func TestDeflatePeersCoder(t *testing.T) {
	cases := []struct {
		mode   coderws.CompressionMode
		cfg    DeflateConfig
		offer  string
		answer string
	}{
		{coderws.CompressionNoContextTakeover, DeflateConfig{}, "permessage-deflate; client_no_context_takeover; server_no_context_takeover", answerNoContext},
		{coderws.CompressionContextTakeover, DeflateConfig{}, offerFirefox, answerNoContext},
		{coderws.CompressionContextTakeover, ctxConfig, offerFirefox, answerCtxClient},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("mode=%d/context=%v", c.mode, c.cfg.ContextTakeover), func(t *testing.T) {
			s := startDeflateEcho(t, c.cfg)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, _, err := coderws.Dial(ctx, s.url(), &coderws.DialOptions{CompressionMode: c.mode, HTTPClient: &http.Client{}})
			if err != nil {
				t.Fatal(err)
			}
			conn.SetReadLimit(echoLimit)
			for i, m := range peerMessages() {
				typ := coderws.MessageText
				if !ValidUTF8(m) {
					typ = coderws.MessageBinary
				}
				if err := conn.Write(ctx, typ, m); err != nil {
					t.Fatal(err)
				}
				_, got, err := conn.Read(ctx)
				if err != nil || !bytes.Equal(got, m) {
					t.Fatalf("message %d: %d bytes back of %d, %v", i, len(got), len(m), err)
				}
			}
			_ = conn.Close(coderws.StatusNormalClosure, "")
			st := s.last(t)
			if st.offer != c.offer {
				t.Errorf("coder offers %q; the tables say %q", st.offer, c.offer)
			}
			checkCompressedBothWays(t, st, c.answer)
		})
	}
}
