package loop

import (
	"encoding/binary"
	"io"
	"math/rand/v2"
	"testing"
	"time"
	"unsafe"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/internal/config"
)

// FuzzReadBounds drives the real reader (traffic, from the upgrade request
// to the close) with a fuzzer-chosen stream of frames delivered in
// fuzzer-chosen pieces, as gnet's reads would, and checks after every
// piece that no input makes a buffer grow past its bound:
//
//   - the message being assembled holds at most MaxMessageSize bytes, in a
//     buffer of at most twice that (the geometric growth of growBuffer);
//   - what the reader leaves unconsumed in gnet's inbound buffer is at most
//     an incomplete frame header and control frame (139 bytes) once open,
//     and at most MaxHeaderBytes before.
//
// frames is read as a list of records (see fuzzFrames) so that the fuzzer
// reaches fragmented messages, huge declared lengths and interleaved
// control frames; with raw set the bytes go on the wire as they are.
func FuzzReadBounds(f *testing.F) {
	// Seeds: the attacks of gateway/size_attack_test.go and plain traffic.
	f.Add(record(0x02, 0, 1, 1), false, uint16(65535), uint16(7), false)
	f.Add(append(record(0x02, 0, 1, 1), record(0x10, 2, 1<<63-1, 1024)...), false, uint16(65535), uint16(1), false)     // continuation declaring 2^63-1
	f.Add(append(record(0x02, 0, 100, 100), record(0x10, 2, 1<<63-100, 4096)...), false, uint16(100), uint16(3), false) // the sum wraps to MinInt64
	f.Add(record(0x12, 2, 1<<63-1, 1024), false, uint16(65535), uint16(0), false)                                       // single frame
	f.Add(append(append(record(0x02, 1, 300, 300), record(0x19, 0, 4, 4)...), record(0x00, 1, 300, 300)...), false, uint16(500), uint16(13), false)
	// The peer's close frame with more behind it, while our answer waits in
	// gnet's outbound buffer.
	f.Add(append(append(record(0x18, 0, 0, 0), record(0x12, 1, 300, 300)...), record(0x12, 1, 300, 300)...), false, uint16(1000), uint16(8191), true)
	f.Add([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, true, uint16(1000), uint16(2), false) // 64-bit length, MSB set
	// One server for every input: its pool's workers read nothing of its
	// options, so the loop may change MaxMessageSize between inputs.
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, frames []byte, raw bool, maxMsg, chunk uint16, backlog bool) {
		max := 1 + int(maxMsg)
		s.cfg.MaxMessageSize = max
		stream := fuzzRequest
		if raw {
			stream = append(stream, frames...)
		} else {
			stream = fuzzFrames(stream, frames)
		}
		l, c, gc := fuzzConn(s)
		gc.backlog = backlog
		rng := rand.New(rand.NewPCG(uint64(chunk), 0))
		capBound := 2 * max
		if capBound < 1<<minClassShift {
			capBound = 1 << minClassShift
		}
		for len(stream) > 0 && c.state != stateClosed {
			n := min(len(stream), 1+rng.IntN(int(chunk)%8192+1))
			gc.in = append(gc.in, stream[:n]...)
			stream = stream[n:]
			if l.traffic(c) == gnet.Close {
				break // gnet closes the connection: its buffers go
			}
			if b := c.d().msgBuf; b != nil && (len(b.b) > max || cap(b.b) > capBound) {
				t.Fatalf("message buffer len %d cap %d, max message %d", len(b.b), cap(b.b), max)
			}
			if int(c.d().frame.msgLen) > max {
				t.Fatalf("message length %d over max %d", c.d().frame.msgLen, max)
			}
			left := len(gc.in)
			if c.flags.has(fInPaused) {
				// A paused connection reads nothing more (the kernel
				// keeps the rest, third_party/gnet/PATCH.md): what gnet
				// holds is at most the read that was being parsed plus a
				// partial frame from before it. Nothing in this model
				// resumes it.
				if left > n+codec.MaxHeaderSize+codec.MaxControlPayload {
					t.Fatalf("%d bytes left unconsumed while paused, last read %d", left, n)
				}
				break
			}
			switch {
			case c.state >= stateOpen && left > codec.MaxHeaderSize+codec.MaxControlPayload:
				t.Fatalf("%d bytes left unconsumed in state %d", left, c.state)
			case c.state < stateOpen && left > s.cfg.MaxHeaderBytes:
				t.Fatalf("%d bytes left unconsumed before the upgrade", left)
			}
		}
		l.closed(c, nil)
		if c.d().msgBuf != nil {
			t.Fatal("message buffer kept after close")
		}
	})
}

// fuzzRequest is the upgrade request every fuzzed stream starts with.
var fuzzRequest = codec.AppendClientRequest(nil, "x", "/ws", []byte("dGhlIHNhbXBsZSBub25jZQ=="), nil, nil)

// fuzzKey masks fuzzed frames.
var fuzzKey = [4]byte{1, 2, 3, 4}

// fuzzFrames appends to dst the frames that recs describe. Each record is
//
//	op    bits 0-3: opcode; bit 4: FIN
//	enc   0: length is the next byte % 126; 1: next 2 bytes; 2: next 8
//	      bytes, most significant bit cleared; 3: next 8 bytes as they are
//	len   as enc says
//	send  2 bytes: payload bytes actually sent, at most the length
//	fill  the payload byte (masked on the wire)
//
// A record cut short ends the list.
func fuzzFrames(dst, recs []byte) []byte {
	for len(recs) >= 2 {
		op, enc := recs[0], recs[1]%4
		recs = recs[2:]
		var n uint64
		switch enc {
		case 0:
			if len(recs) < 1 {
				return dst
			}
			n, recs = uint64(recs[0]%126), recs[1:]
		case 1:
			if len(recs) < 2 {
				return dst
			}
			n, recs = uint64(binary.BigEndian.Uint16(recs)), recs[2:]
		default:
			if len(recs) < 8 {
				return dst
			}
			n, recs = binary.BigEndian.Uint64(recs), recs[8:]
			if enc == 2 {
				n &^= 1 << 63
			}
		}
		if len(recs) < 3 {
			return dst
		}
		send := min(uint64(binary.BigEndian.Uint16(recs)), n)
		fill := recs[2]
		recs = recs[3:]
		b0 := op & 0x0f
		if op&0x10 != 0 {
			b0 |= 0x80
		}
		dst = append(dst, b0)
		switch {
		case n < 126:
			dst = append(dst, 0x80|byte(n))
		case n <= 0xffff:
			dst = append(dst, 0x80|126)
			dst = binary.BigEndian.AppendUint16(dst, uint16(n))
		default:
			dst = append(dst, 0x80|127)
			dst = binary.BigEndian.AppendUint64(dst, n)
		}
		dst = append(dst, fuzzKey[:]...)
		start := len(dst)
		for range send {
			dst = append(dst, fill)
		}
		codec.Cipher(dst[start:], fuzzKey, 0)
	}
	return dst
}

// record builds one fuzzFrames record: op (with 0x10 for FIN), enc, the
// declared length and the payload bytes to send.
func record(op, enc byte, n uint64, send uint16) []byte {
	b := []byte{op, enc}
	switch enc {
	case 0:
		b = append(b, byte(n))
	case 1:
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(b, n)
	}
	b = binary.BigEndian.AppendUint16(b, send)
	return append(b, 'a')
}

// fuzzServer returns a server that is never started; its pool is
// released when f ends.
func fuzzServer(f *testing.F) *Server {
	s := newTestServer(f, config.Config{
		Addr: "127.0.0.1:0", Path: "/ws", Loops: 1, Workers: 4,
		MaxMessageSize: 1, MaxHeaderBytes: 1024, TimerTick: 100 * time.Millisecond,
		HandshakeTimeout: 5 * time.Second, CloseTimeout: time.Second,
		MailboxMessages: 1 << 16, MailboxBytes: 1 << 30, MaxInbound: 1<<30 + 1,
	}, nopHandler{})
	f.Cleanup(s.pool.Release)
	return s
}

// fuzzConn returns a new loop of s and a connection on it over a fake
// gnet.Conn, in the state OnOpen leaves.
func fuzzConn(s *Server) (*eventLoop, *Conn, *fakeConn) {
	l := newEventLoop(s, nil)
	// As inside OnTraffic: a wake from a worker is then left to the
	// loop's next pass instead of going to the (absent) gnet loop.
	l.busy.Store(true)
	gc := &fakeConn{}
	l.fake = gc
	c := &Conn{loop: l, gp: unsafe.Pointer(gc), state: stateHandshake}
	l.insert(c)
	l.stats.connsOpen.Add(1)
	return l, c, gc
}

type nopHandler struct{}

func (nopHandler) OnOpen(*Conn)                    {}
func (nopHandler) OnMessage(*Conn, OpCode, []byte) {}
func (nopHandler) OnClose(*Conn, error)            {}

// fakeConn is the part of gnet.Conn the reader uses, over one byte slice
// that stands for gnet's read buffer and inbound ring together. Any other
// method panics (the embedded interface is nil): the fuzzer then reports
// that the reader reached for something this model lacks.
type fakeConn struct {
	gnet.Conn
	in      []byte
	out     int
	backlog bool // the socket takes no write at once: output stays buffered
}

func (f *fakeConn) InboundBuffered() int { return len(f.in) }

// Peek follows gnet's: n <= 0 means everything, more than is buffered is
// io.ErrShortBuffer.
func (f *fakeConn) Peek(n int) ([]byte, error) {
	if n > len(f.in) {
		return nil, io.ErrShortBuffer
	}
	if n <= 0 {
		n = len(f.in)
	}
	return f.in[:n:n], nil
}

func (f *fakeConn) Discard(n int) (int, error) {
	if n <= 0 || n >= len(f.in) {
		k := len(f.in)
		f.in = f.in[:0]
		return k, nil
	}
	f.in = f.in[n:]
	return n, nil
}

func (f *fakeConn) Write(p []byte) (int, error) { f.out += len(p); return len(p), nil }
func (f *fakeConn) OutboundBuffered() int {
	if f.backlog {
		return f.out
	}
	return 0
}
func (f *fakeConn) Fd() int { return -1 }

// The seeds' frames must be what they claim, or the fuzz target tests
// less than it says.
func TestFuzzFramesRecords(t *testing.T) {
	got := fuzzFrames(nil, append(record(0x02, 0, 1, 1), record(0x10, 2, 1<<63-1, 2)...))
	h, n, err := codec.ParseHeader(got, codec.RoleServer, 0)
	if err != nil || h.OpCode != ws.OpBinary || h.Fin || h.Length != 1 {
		t.Fatalf("first frame %+v %v", h, err)
	}
	h, _, err = codec.ParseHeader(got[n+1:], codec.RoleServer, 0)
	if err != nil || h.OpCode != ws.OpContinuation || !h.Fin || h.Length != 1<<63-1 {
		t.Fatalf("second frame %+v %v", h, err)
	}
}
