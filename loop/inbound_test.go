package loop

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/config"
)

// blockHandler blocks every message until release is closed.
type blockHandler struct{ release chan struct{} }

func (blockHandler) OnOpen(*Conn)                      {}
func (h blockHandler) OnMessage(*Conn, OpCode, []byte) { <-h.release }
func (blockHandler) OnClose(*Conn, error)              {}

// testConfig is a working configuration on a free loopback port.
func testConfig() config.Config {
	return config.Config{
		Addr: "127.0.0.1:0", Path: "/ws", Loops: 1, Workers: 4,
		MaxMessageSize: 1 << 20, MaxHeaderBytes: 8 << 10,
		TimerTick:        10 * time.Millisecond,
		HandshakeTimeout: 5 * time.Second, CloseTimeout: 3 * time.Second,
		MailboxMessages: 64, MailboxBytes: 256 << 10, MaxInbound: 2 << 20,
		MaxOutbound: 1 << 20, Logger: slog.New(slog.DiscardHandler),
	}
}

// newTestServer resolves c and makes a server of it.
func newTestServer(t testing.TB, c config.Config, h Handler) *Server {
	t.Helper()
	r, err := config.Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(r, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Where reads cannot pause, input keeps arriving; past MaxInbound the
// connection is closed with 1008 and the unparsed input dropped is
// counted, never held without bound.
func TestInboundBackstopWithoutPause(t *testing.T) {
	h := blockHandler{release: make(chan struct{})}
	s := newTestServer(t, testConfig(), h)
	s.noPause = true
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		close(h.release)
		s.Shutdown(t.Context())
	}()
	conn, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	key := codec.NewClientKey()
	conn.Write(codec.AppendClientRequest(nil, s.Addr().String(), "/ws", key[:], nil, nil))
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatal(err)
		}
		if line == "\r\n" {
			break
		}
	}
	go func() {
		frame := codec.AppendFrameMasked(nil, ws.OpBinary, true, make([]byte, 64<<10), [4]byte{})
		for i := 0; i < 256; i++ { // 16 MiB
			if _, err := conn.Write(frame); err != nil {
				return
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatal(err)
	}
	if ws.OpCode(hdr[0]&0xf) != ws.OpClose {
		t.Fatalf("first frame opcode %#x, want close", hdr[0]&0xf)
	}
	p := make([]byte, hdr[1]&0x7f)
	io.ReadFull(r, p)
	if code, reason, _ := codec.ParseCloseUnsafe(p); code != ws.StatusPolicyViolation {
		t.Fatalf("close %d %q, want 1008", code, reason)
	}
	waitUntil(t, func() bool { return s.Stats().DroppedIn == 1 })
	st := s.Stats()
	if st.DroppedInBytes == 0 || st.InboundPauses != 0 || st.InboundBytesMax > int64(s.cfg.MaxInbound)+64<<10 {
		t.Fatalf("DroppedInBytes %d, pauses %d, held %d (bound %d)", st.DroppedInBytes, st.InboundPauses, st.InboundBytesMax, s.cfg.MaxInbound)
	}
}
