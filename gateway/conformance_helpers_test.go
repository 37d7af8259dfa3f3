package gateway_test

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// The conformance suite (conformance_*_test.go) checks the server against
// RFC 6455 section by section, in the spirit of Autobahn|Testsuite cases
// 1-7 and 9, through real sockets. It builds client frames and parses
// server frames with the small encoder and parser below, written from
// RFC 6455 §5.2 with encoding/binary and a byte loop for masking: they
// share no code with package codec, so a bug there cannot hide behind a
// matching bug in the test. Only the opening handshake (dialRaw) goes
// through codec; handshake_test.go checks it on its own.
//
// Every expectation is about order, never about time: to show that the
// server ignored something, a test sends a probe after it (a ping with a
// fresh payload) and requires the probe's answer to be the very next frame.
// The exceptions are the keepalive tests in conformance_control_test.go,
// which need the server's own timers: ServerPing on the real clock, with
// margins of hundreds of milliseconds (it fails spuriously only if a
// process stalls for that long), LongFrameIsProofOfLife on a fake clock
// (internal/clock) that it steps.

// startConformance is startServer with the server's keepalive pings off
// unless cfg sets PingInterval. A connection's first ping comes at a random
// time within the interval (pings are spread on purpose), and the suite
// requires exact sequences of server frames. The server's own pings are
// tested in conformance_control_test.go.
func startConformance(t testing.TB, cfg gateway.Config, h gateway.Handler) *gateway.Server {
	t.Helper()
	if cfg.PingInterval == 0 {
		cfg.PingInterval = -1
	}
	return startServer(t, cfg, h)
}

// dialSmallWindow is dialRaw with an 8 KiB receive buffer, set before
// connecting so that the TCP window is small from the start (shrinking it
// later can stall the connection): what the client does not read then
// stays in the server instead of in the kernel's buffers.
func dialSmallWindow(t testing.TB, srv *gateway.Server) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		rc.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 8<<10)
		})
		return err
	}}
	conn, err := d.Dial("tcp", srv.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, r: bufio.NewReaderSize(conn, 1<<16)}
	key := codec.NewClientKey()
	c.writeRaw(codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, nil))
	if status, resp := c.readHTTP(); status != 101 {
		t.Fatalf("upgrade: %d\n%s", status, resp)
	}
	return c
}

// Opcodes (RFC 6455 §5.2, §11.8), spelled out so that tests read like the
// RFC's tables.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// wframe is one client frame to put on the wire.
type wframe struct {
	fin  bool
	rsv  byte // the 3-bit RSV field, RSV1 its highest bit; 0 normally
	op   byte
	data []byte
	// lenForm forces the payload length encoding: 0 for the minimal one,
	// 2 for the 16-bit form, 8 for the 64-bit form (RFC 6455 §5.2).
	lenForm int
	// announce, if not zero, is the length written in the header in
	// place of len(data): tests that announce more than they send.
	announce uint64
	// unmasked sends the frame without a masking key.
	unmasked bool
}

func msg(op byte, data []byte) wframe { return wframe{fin: true, op: op, data: data} }
func text(s string) wframe            { return msg(opText, []byte(s)) }
func binaryMsg(b []byte) wframe       { return msg(opBinary, b) }
func ping(s string) wframe            { return msg(opPing, []byte(s)) }
func pong(s string) wframe            { return msg(opPong, []byte(s)) }

// frag is a non-final frame (FIN clear) with opcode op.
func frag(op byte, data []byte) wframe { return wframe{op: op, data: data} }

// closeMsg is a close frame with code and reason; code 0 sends an empty
// payload.
func closeMsg(code uint16, reason string) wframe {
	if code == 0 {
		return msg(opClose, nil)
	}
	return msg(opClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}

// appendWire appends f, masked with key unless f.unmasked, to dst.
func appendWire(dst []byte, f wframe, key [4]byte) []byte {
	b0 := f.rsv<<4 | f.op&0x0f
	if f.fin {
		b0 |= 0x80
	}
	n := uint64(len(f.data))
	if f.announce != 0 {
		n = f.announce
	}
	var b1 byte
	if !f.unmasked {
		b1 = 0x80
	}
	form := f.lenForm
	if form == 0 {
		switch {
		case n <= 125:
		case n <= 0xffff:
			form = 2
		default:
			form = 8
		}
	}
	switch form {
	case 0:
		dst = append(dst, b0, b1|byte(n))
	case 2:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(n))
	case 8:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, n)
	}
	if f.unmasked {
		return append(dst, f.data...)
	}
	dst = append(dst, key[:]...)
	start := len(dst)
	dst = append(dst, f.data...)
	maskBytes(dst[start:], key)
	return dst
}

// maskBytes XORs p with key from offset 0 (RFC 6455 §5.3: octet i with
// key octet i mod 4), eight bytes at a time.
func maskBytes(p []byte, key [4]byte) {
	k := uint64(binary.LittleEndian.Uint32(key[:]))
	k |= k << 32
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= key[i&3]
	}
}

// wire encodes frames, each with a fresh masking key (RFC 6455 §5.3).
func (c *rawClient) wire(frames ...wframe) []byte {
	var b []byte
	for _, f := range frames {
		var key [4]byte
		binary.LittleEndian.PutUint32(key[:], rand.Uint32())
		b = appendWire(b, f, key)
	}
	return b
}

// writeMode says how a byte stream is cut into writes, to exercise the
// server's handling of partial headers and payloads.
type writeMode struct {
	name  string
	split func(r *rand.Rand, n int) []int // chunk lengths summing to n
}

var (
	oneWrite   = writeMode{"one write", func(_ *rand.Rand, n int) []int { return []int{n} }}
	byteByByte = writeMode{"byte by byte", func(_ *rand.Rand, n int) []int {
		s := make([]int, n)
		for i := range s {
			s[i] = 1
		}
		return s
	}}
	randomChunks = writeMode{"random chunks", func(r *rand.Rand, n int) []int {
		var s []int
		for n > 0 {
			k := min(n, 1+r.IntN(max(2, min(n, 997))))
			s = append(s, k)
			n -= k
		}
		return s
	}}
	allWriteModes = []writeMode{oneWrite, byteByByte, randomChunks}
)

// newRand returns a random source for a test, logging its seed so that a
// failure can be replayed by hard-coding it.
func newRand(t testing.TB) *rand.Rand {
	seed := rand.Uint64()
	t.Logf("random seed %#x", seed)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// sendIn writes b cut as mode says.
func (c *rawClient) sendIn(mode writeMode, r *rand.Rand, b []byte) {
	c.t.Helper()
	if r == nil {
		r = rand.New(rand.NewPCG(1, 2))
	}
	for _, n := range mode.split(r, len(b)) {
		c.writeRaw(b[:n])
		b = b[n:]
	}
}

// send writes frames in one write.
func (c *rawClient) send(frames ...wframe) {
	c.t.Helper()
	c.writeRaw(c.wire(frames...))
}

// rframe is one server frame as read off the wire.
type rframe struct {
	fin  bool
	op   byte
	data []byte
}

// next reads one server frame and checks what RFC 6455 requires of every
// server frame: no mask (§5.1), RSV bits clear without an extension
// (§5.2), a defined opcode, a minimal length (§5.2), and unfragmented
// control frames of at most 125 bytes (§5.5). It fails the test on any
// violation or read error.
func (c *rawClient) next() rframe {
	c.t.Helper()
	f, err := c.tryNext()
	if err != nil {
		c.t.Fatalf("reading a server frame: %v", err)
	}
	return f
}

func (c *rawClient) tryNext() (rframe, error) {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var h [14]byte
	if _, err := io.ReadFull(c.r, h[:2]); err != nil {
		return rframe{}, err
	}
	f := rframe{fin: h[0]&0x80 != 0, op: h[0] & 0x0f}
	if rsv := h[0] >> 4 & 7; rsv != 0 {
		c.t.Fatalf("server frame with RSV bits %03b (§5.2)", rsv)
	}
	if h[1]&0x80 != 0 {
		c.t.Fatal("server frame is masked (§5.1)")
	}
	switch f.op {
	case opCont, opText, opBinary:
	case opClose, opPing, opPong:
		if !f.fin || h[1]&0x7f > 125 {
			c.t.Fatalf("server control frame %#x fragmented or over 125 bytes (§5.5)", f.op)
		}
	default:
		c.t.Fatalf("server frame with reserved opcode %#x (§5.2)", f.op)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		if _, err := io.ReadFull(c.r, h[2:4]); err != nil {
			return f, err
		}
		if n = uint64(binary.BigEndian.Uint16(h[2:4])); n < 126 {
			c.t.Fatalf("server frame length %d in the 16-bit form (§5.2: minimal)", n)
		}
	case 127:
		if _, err := io.ReadFull(c.r, h[2:10]); err != nil {
			return f, err
		}
		if n = binary.BigEndian.Uint64(h[2:10]); n <= 0xffff || n>>63 != 0 {
			c.t.Fatalf("server frame length %d in the 64-bit form (§5.2)", n)
		}
	}
	if n > 64<<20 {
		c.t.Fatalf("server frame of %d bytes: more than any test sends", n)
	}
	f.data = make([]byte, n)
	if _, err := io.ReadFull(c.r, f.data); err != nil {
		return f, err
	}
	return f, nil
}

// expectMessage reads the next message, which may come in fragments but
// with no control frame among them, and checks its opcode and payload.
func (c *rawClient) expectMessage(op byte, want []byte) {
	c.t.Helper()
	f := c.next()
	if f.op != op {
		c.t.Fatalf("got frame %s, want a message with opcode %#x", f, op)
	}
	got := f.data
	for !f.fin {
		if f = c.next(); f.op != opCont {
			c.t.Fatalf("got frame %s inside a fragmented message", f)
		}
		got = append(got, f.data...)
	}
	if string(got) != string(want) {
		c.t.Fatalf("message of %d bytes differs from the %d sent%s", len(got), len(want), diffAt(got, want))
	}
}

// expectPong requires the next frame to be a pong carrying payload
// (RFC 6455 §5.5.3: "the Application data of the Ping frame being
// replied to").
func (c *rawClient) expectPong(payload []byte) {
	c.t.Helper()
	f := c.next()
	if f.op != opPong || string(f.data) != string(payload) {
		c.t.Fatalf("got %s, want pong %q", f, payload)
	}
}

// probe proves that everything sent before it was consumed without an
// answer: it pings with a fresh payload and requires the pong to be the
// next frame.
func (c *rawClient) probe() {
	c.t.Helper()
	p := binary.BigEndian.AppendUint64([]byte("probe-"), rand.Uint64())
	c.send(msg(opPing, p))
	c.expectPong(p)
}

// expectCloseFrame requires the next frame to be a close frame with code
// and a valid reason, and returns the reason (RFC 6455 §5.5.1, §7.4).
func (c *rawClient) expectCloseFrame(code uint16) string {
	c.t.Helper()
	f := c.next()
	if f.op != opClose {
		c.t.Fatalf("got %s, want close %d", f, code)
	}
	got, reason := closePayload(c.t, f.data)
	if got != code {
		c.t.Fatalf("close code %d (%q), want %d", got, reason, code)
	}
	return reason
}

// closePayload checks a server close payload and splits it.
func closePayload(t testing.TB, p []byte) (uint16, string) {
	t.Helper()
	switch {
	case len(p) == 0:
		return 1005, "" // no status code present (§7.1.5)
	case len(p) == 1:
		t.Fatal("server close payload of one byte (§5.5.1)")
	case !utf8.Valid(p[2:]):
		t.Fatalf("server close reason is not UTF-8: %q (§5.5.1)", p[2:])
	}
	code := binary.BigEndian.Uint16(p)
	if code < 1000 || code > 4999 || code == 1004 || code == 1005 || code == 1006 || code == 1015 ||
		code > 1014 && code < 3000 {
		t.Fatalf("server sent close code %d, which may not be sent (§7.4)", code)
	}
	return code, string(p[2:])
}

// expectTCPClosed requires the server to end the TCP connection (FIN or
// reset) with nothing more sent (expectEOF).
func (c *rawClient) expectTCPClosed() {
	c.t.Helper()
	c.expectEOF()
}

// expectFail requires the server to fail the connection with code: the
// next frame is its close frame; the client answers as RFC 6455 §5.5.1
// asks, and the server then closes TCP (§7.1.1) with nothing more sent.
func (c *rawClient) expectFail(code uint16) {
	c.t.Helper()
	c.expectCloseFrame(code)
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.conn.Write(c.wire(closeMsg(code, ""))) // may meet a closed socket
	c.expectTCPClosed()
}

func (f rframe) String() string {
	name := map[byte]string{opCont: "continuation", opText: "text", opBinary: "binary",
		opClose: "close", opPing: "ping", opPong: "pong"}[f.op]
	if !f.fin {
		name += " (FIN clear)"
	}
	if len(f.data) > 40 {
		return fmt.Sprintf("%s of %d bytes", name, len(f.data))
	}
	return fmt.Sprintf("%s %q", name, f.data)
}

// diffAt describes where got and want first differ.
func diffAt(got, want []byte) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("; first difference at byte %d", i)
		}
	}
	return ""
}

// firstBadByte returns the index of the first byte at which p stops being
// a prefix of some valid UTF-8 string, or len(p) if it never does; p may
// still end inside a character. It follows the ABNF of RFC 3629 §4
// directly (the validator the server uses is a DFA), so the suite has its
// own oracle for where a fail-fast server must stop.
func firstBadByte(p []byte) int {
	for i := 0; i < len(p); {
		b := p[i]
		n, lo, hi := 0, byte(0x80), byte(0xbf)
		switch {
		case b <= 0x7f:
			i++
			continue
		case 0xc2 <= b && b <= 0xdf:
			n = 1
		case b == 0xe0:
			n, lo = 2, 0xa0
		case 0xe1 <= b && b <= 0xec, b == 0xee, b == 0xef:
			n = 2
		case b == 0xed:
			n, hi = 2, 0x9f
		case b == 0xf0:
			n, lo = 3, 0x90
		case 0xf1 <= b && b <= 0xf3:
			n = 3
		case b == 0xf4:
			n, hi = 3, 0x8f
		default:
			return i
		}
		for k := 1; k <= n; k++ {
			if i+k == len(p) {
				return len(p)
			}
			c := p[i+k]
			if k > 1 {
				lo, hi = 0x80, 0xbf
			}
			if c < lo || c > hi {
				return i + k
			}
		}
		i += n + 1
	}
	return len(p)
}

// TestConformanceOracleFirstBadByte checks firstBadByte against brute
// force over the standard library: a prefix is viable if it, or it followed
// by up to three bytes, is valid UTF-8. The followers are the bounds of
// every continuation-byte range in RFC 3629 §4, which is all that the
// grammar can tell apart.
func TestConformanceOracleFirstBadByte(t *testing.T) {
	followers := []byte{0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf}
	viable := func(q []byte) bool {
		if utf8.Valid(q) {
			return true
		}
		for _, a := range followers {
			for _, b := range append([]byte{0}, followers...) {
				for _, c := range append([]byte{0}, followers...) {
					ext := append(append([]byte(nil), q...), a)
					if b != 0 {
						ext = append(ext, b)
						if c != 0 {
							ext = append(ext, c)
						}
					}
					if utf8.Valid(ext) {
						return true
					}
				}
			}
		}
		return false
	}
	brute := func(p []byte) int {
		for i := range p {
			if !viable(p[:i+1]) {
				return i
			}
		}
		return len(p)
	}
	alphabet := []byte{'a', 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf,
		0xe0, 0xe1, 0xec, 0xed, 0xee, 0xef, 0xf0, 0xf1, 0xf3, 0xf4, 0xf5, 0xf8, 0xfc, 0xfe, 0xff}
	r := newRand(t)
	for range 4000 {
		p := make([]byte, 1+r.IntN(6))
		for i := range p {
			p[i] = alphabet[r.IntN(len(alphabet))]
		}
		if got, want := firstBadByte(p), brute(p); got != want {
			t.Fatalf("firstBadByte(% x) = %d, brute force says %d", p, got, want)
		}
	}
}
