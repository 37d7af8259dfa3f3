package codec

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
	"github.com/gobwas/ws"
	"github.com/gorilla/websocket"
)

// Real clients against a minimal echo server built from this package alone
// (blocking sockets, one connection at a time): negotiation with the offers
// they really send, and compressed messages both ways, with and without
// context takeover, fragmented, with a ping in between. The event loop is
// not involved; this is the codec's own interop check.

// echoStats is what the server saw on one connection.
type echoStats struct {
	offer         string
	agreed        DeflateParams
	negotiated    bool
	compressedIn  int // messages received with RSV1
	compressedOut int // messages sent with RSV1
	messages      int
	err           error
}

// deflateEchoServer accepts connections on a loopback port and echoes every
// message, compressing what it sends when the agreement allows.
type deflateEchoServer struct {
	ln    net.Listener
	cfg   DeflateConfig
	mu    sync.Mutex
	stats []echoStats
	wg    sync.WaitGroup
}

func startDeflateEcho(t *testing.T, cfg DeflateConfig) *deflateEchoServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &deflateEchoServer{ln: ln, cfg: cfg}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			st := s.serve(c)
			_ = c.Close()
			s.mu.Lock()
			s.stats = append(s.stats, st)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() { _ = ln.Close(); s.wg.Wait() })
	return s
}

func (s *deflateEchoServer) url() string { return "ws://" + s.ln.Addr().String() + "/" }

// last returns the stats of the last connection that ended.
func (s *deflateEchoServer) last(t *testing.T) echoStats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		n := len(s.stats)
		var st echoStats
		if n > 0 {
			st = s.stats[n-1]
		}
		s.mu.Unlock()
		if n > 0 {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatal("the server saw no connection end")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

const echoLimit = 4 << 20

func (s *deflateEchoServer) serve(c net.Conn) (st echoStats) {
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReaderSize(c, 64<<10)
	var buf []byte
	var r Request
	for {
		b, err := br.ReadByte()
		if err != nil {
			st.err = err
			return st
		}
		buf = append(buf, b)
		n, err := r.Parse(buf, 0)
		if err != nil {
			st.err = err
			return st
		}
		if n > 0 {
			break
		}
	}
	if st.err = r.CheckUpgrade(); st.err != nil {
		return st
	}
	st.offer = string(r.Header("Sec-WebSocket-Extensions"))
	st.agreed, st.negotiated = r.NegotiateDeflate(s.cfg)
	var resp []byte
	rsv := byte(0)
	if st.negotiated {
		resp = AppendUpgradeResponseDeflate(nil, r.Key(), nil, st.agreed, nil)
		rsv = Rsv1
	} else {
		resp = AppendUpgradeResponse(nil, r.Key(), nil, nil)
	}
	if _, st.err = c.Write(resp); st.err != nil {
		return st
	}

	d, f := NewDeflater(), NewInflater()
	sendCtx, sendBits := st.agreed.Send(RoleServer)
	recvCtx, recvBits := st.agreed.Receive(RoleServer)
	var sendWin, recvWin Window
	if sendCtx {
		sendWin.Init(min(sendBits, int(s.cfg.windowBits())))
	}
	if recvCtx {
		recvWin.Init(recvBits)
	}
	var msg []byte
	var op ws.OpCode
	compressed := false
	var hdr [MaxHeaderSize]byte
	for {
		// Read a header: the fixed part, then what its length needs.
		if _, st.err = io.ReadFull(br, hdr[:2]); st.err != nil {
			return st
		}
		need := 2 + 4
		switch hdr[1] & 0x7f {
		case 126:
			need += 2
		case 127:
			need += 8
		}
		if _, st.err = io.ReadFull(br, hdr[2:need]); st.err != nil {
			return st
		}
		h, n, err := ParseHeader(hdr[:need], RoleServer, rsv)
		if err != nil || n != need {
			st.err = fmt.Errorf("header %x: %v", hdr[:need], err)
			return st
		}
		payload := make([]byte, h.Length)
		if _, st.err = io.ReadFull(br, payload); st.err != nil {
			return st
		}
		Cipher(payload, h.Mask, 0)
		if h.OpCode.IsControl() {
			switch h.OpCode {
			case ws.OpPing:
				_, st.err = c.Write(AppendFrame(nil, ws.OpPong, true, payload))
			case ws.OpClose:
				_, _ = c.Write(AppendFrame(nil, ws.OpClose, true, payload))
				return st
			}
			if st.err != nil {
				return st
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op, msg, compressed = h.OpCode, msg[:0], h.Rsv&Rsv1 != 0
		}
		msg = append(msg, payload...)
		if !h.Fin {
			continue
		}
		st.messages++
		plain := msg
		if compressed {
			st.compressedIn++
			var dict []byte
			if recvCtx {
				dict = recvWin.Bytes()
			}
			f.Reset(msg, dict, echoLimit)
			if plain, st.err = f.InflateAll(nil); st.err != nil {
				return st
			}
			if recvCtx {
				recvWin.Append(plain)
			}
		}
		if op == ws.OpText && !ValidUTF8(plain) {
			st.err = errors.New("invalid UTF-8 after inflating")
			return st
		}
		if _, st.err = c.Write(s.frames(d, &sendWin, sendCtx, sendBits, op, plain, st.negotiated, &st)); st.err != nil {
			return st
		}
	}
}

// frames encodes the echo of a message: compressed above 64 bytes when it
// pays, in fragments of 64 KiB (RSV1 on the first only, RFC 7692 §6.1).
func (s *deflateEchoServer) frames(d *Deflater, win *Window, ctx bool, bits int, op ws.OpCode, plain []byte, negotiated bool, st *echoStats) []byte {
	body, rsv := plain, byte(0)
	if negotiated && len(plain) > 64 {
		var dict []byte
		if ctx {
			dict = win.Bytes()
		}
		if z := d.AppendCompress(nil, plain, dict, bits); len(z) < len(plain) {
			body, rsv = z, Rsv1
			st.compressedOut++
			if ctx {
				win.Append(plain)
			}
		}
	}
	var out []byte
	for first := true; first || len(body) > 0; first = false {
		n := min(len(body), 64<<10)
		h := ws.Header{Fin: n == len(body), OpCode: ws.OpContinuation, Length: int64(n)}
		if first {
			h.OpCode, h.Rsv = op, rsv
		}
		out = AppendHeader(out, h)
		out = append(out, body[:n]...)
		body = body[n:]
	}
	return out
}

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
func requireTool(t *testing.T, path, install string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is missing; .ci/run installs it (%s)", path, install)
		}
		t.Skipf("%s is missing (%s)", path, install)
	}
	return path
}

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
		if os.Getenv("CI") != "" {
			t.Fatal("python3-websockets is missing; .ci/run installs it")
		}
		t.Skip("python3-websockets is missing")
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
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed")
	}
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
