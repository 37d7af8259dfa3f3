//go:build linux

package main

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
)

// testLoop returns a loop with one open connection whose socket is one end
// of a socketpair; the other end is returned to play the server.
func testLoop(t *testing.T) (*loop, *conn, int) {
	t.Helper()
	cfg := &config{scenario: scRate, size: 64, slowSize: 64, conns: 1, targets: []target{{}}}
	r := &runner{cfg: cfg, epoch: time.Now()}
	l, err := newLoop(r, 0, []int{0})
	if err != nil {
		t.Fatal(err)
	}
	r.loops = []*loop{l}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.closeAll()
		unix.Close(fds[1])
	})
	c := &l.conns[0]
	c.fd, c.state = int32(fds[0]), stOpen
	l.phase = phaseSteady
	return l, c, fds[1]
}

func stamped(ts int64, n int) []byte {
	p := make([]byte, n)
	binary.LittleEndian.PutUint64(p, uint64(ts))
	return p
}

// serverStream is what a server might send: a data frame, a ping, a
// message in two fragments, a frame with a 16-bit length, and a close.
func serverStream(ts int64) []byte {
	var b []byte
	b = codec.AppendFrame(b, ws.OpBinary, true, stamped(ts, 20))
	b = codec.AppendFrame(b, ws.OpPing, true, []byte("hi"))
	frag := stamped(ts, 30)
	b = codec.AppendFrame(b, ws.OpText, false, frag[:5])
	b = codec.AppendFrame(b, ws.OpContinuation, true, frag[5:])
	b = codec.AppendFrame(b, ws.OpBinary, true, stamped(ts, 300))
	b = codec.AppendClose(b, ws.StatusGoingAway, "bye")
	return b
}

// TestConsumeSplitAnywhere feeds the stream in two reads split at every
// offset: the parser must keep only what a split header or control frame
// needs and still see three messages, a ping and the close.
func TestConsumeSplitAnywhere(t *testing.T) {
	stream := serverStream(1)
	for cut := 0; cut <= len(stream); cut++ {
		l, c, peer := testLoop(t)
		now := l.r.now()
		binary.LittleEndian.PutUint64(stream[2:], uint64(now)) // first frame: header of 2 bytes
		l.consume(c, append([]byte(nil), stream[:cut]...), now)
		if c.fd >= 0 && len(c.carry) > codec.MaxHeaderSize+codec.MaxControlPayload {
			t.Fatalf("cut %d: carrying %d bytes", cut, len(c.carry))
		}
		if c.fd >= 0 {
			l.consume(c, append([]byte(nil), stream[cut:]...), now)
		}
		if got := l.ctr[cReceived].Load(); got != 3 {
			t.Fatalf("cut %d: %d messages, want 3", cut, got)
		}
		if l.lat.TotalCount() != 3 {
			t.Fatalf("cut %d: %d latencies, want 3", cut, l.lat.TotalCount())
		}
		if c.fd != -1 || l.closeCodes["1001"] != 1 || l.ctr[cClosedByServer].Load() != 1 {
			t.Fatalf("cut %d: fd %d, close codes %v", cut, c.fd, l.closeCodes)
		}
		// The client answered the ping and the close, masked.
		buf := make([]byte, 256)
		n, _ := unix.Read(peer, buf)
		want := []struct {
			op      ws.OpCode
			payload string
		}{{ws.OpPong, "hi"}, {ws.OpClose, "\x03\xe9"}}
		p := buf[:n]
		for _, w := range want {
			h, hn, err := codec.ParseHeader(p, codec.RoleServer, 0)
			if err != nil || hn == 0 {
				t.Fatalf("cut %d: reply %q: %v", cut, p, err)
			}
			body := append([]byte(nil), p[hn:hn+int(h.Length)]...)
			codec.Cipher(body, h.Mask, 0)
			if h.OpCode != w.op || string(body) != w.payload {
				t.Fatalf("cut %d: reply op %v %q, want %v %q", cut, h.OpCode, body, w.op, w.payload)
			}
			p = p[hn+int(h.Length):]
		}
	}
}

func TestConsumeRejectsMaskedServerFrame(t *testing.T) {
	l, c, _ := testLoop(t)
	bad := codec.AppendFrameMasked(nil, ws.OpBinary, true, []byte("x"), [4]byte{1, 2, 3, 4})
	l.consume(c, bad, l.r.now())
	if c.fd != -1 || l.errs["protocol: "+codec.ErrMasked.Error()] != 1 {
		t.Fatalf("fd %d, errors %v", c.fd, l.errs)
	}
}

func TestTimerHeapOrder(t *testing.T) {
	var h timerHeap
	for _, at := range []int64{50, 10, 40, 10, 30, 20, 60, 0} {
		h.push(timer{at: at})
	}
	prev := int64(-1)
	for len(h) > 0 {
		at := h.pop().at
		if at < prev {
			t.Fatalf("popped %d after %d", at, prev)
		}
		prev = at
	}
}

// TestConnSize keeps the per-connection state small: a million of them
// must fit in a few hundred MiB of client memory.
func TestConnSize(t *testing.T) {
	if s := unsafe.Sizeof(conn{}); s > 128 {
		t.Errorf("conn is %d bytes, want at most 128", s)
	}
}

// TestPassReadsBeforeTimers plays a loop that was starved of CPU: the
// server's 101 already sits in the socket, and the attempt's handshake
// deadline has passed meanwhile. One pass must read the response first and
// count an upgrade; running the loop's timers first, as it used to, would
// give up on an attempt that had succeeded. The same order makes a starved
// loop answer the pings waiting in its sockets before anything else.
func TestPassReadsBeforeTimers(t *testing.T) {
	l, c, peer := testLoop(t)
	l.r.phase.Store(l.phase)
	c.state = stHandshake
	c.key = codec.NewClientKey()
	l.ctr.add(cPending, 1)
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: c.idx, Pad: int32(c.gen)}
	if err := unix.EpollCtl(l.epf, unix.EPOLL_CTL_ADD, int(c.fd), &ev); err != nil {
		t.Fatal(err)
	}
	l.tm.push(timer{at: l.r.now() - int64(time.Millisecond), idx: c.idx, gen: c.gen, kind: tmHandshake})
	resp := codec.AppendUpgradeResponse(nil, c.key[:], nil, nil)
	// A ping right behind the 101: it must be answered in the same pass.
	resp = codec.AppendFrame(resp, ws.OpPing, true, []byte("ping"))
	if _, err := unix.Write(peer, resp); err != nil {
		t.Fatal(err)
	}
	if !l.pass() {
		t.Fatal("pass ended the loop")
	}
	if c.state != stOpen || l.ctr[cEstablished].Load() != 1 || len(l.errs) != 0 {
		t.Fatalf("state %d, established %d, errors %v: want open, 1, none", c.state, l.ctr[cEstablished].Load(), l.errs)
	}
	buf := make([]byte, 64)
	n, err := unix.Read(peer, buf)
	if err != nil {
		t.Fatalf("no pong in the peer's socket: %v", err)
	}
	h, hn, err := codec.ParseHeader(buf[:n], codec.RoleServer, 0)
	if err != nil || hn == 0 || h.OpCode != ws.OpPong {
		t.Fatalf("peer got %x (%v): want a pong", buf[:n], err)
	}
}
