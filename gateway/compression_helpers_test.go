package gateway_test

import (
	"bytes"
	"compress/flate"
	"io"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
	"github.com/wsgate/wsgate/gateway"
)

// zClient is a raw client that speaks permessage-deflate with the standard
// library's compress/flate (not the klauspost engine the server uses), so
// that the server's frames are read by a decoder nobody here wrote.
type zClient struct {
	*rawClient
	params  codec.DeflateParams // the server's answer; zero if declined
	ok      bool
	sendWin []byte // our plain text sent compressed, with client context takeover
	recvWin []byte // the server's, with server context takeover
}

// dialDeflate upgrades offering offer (nil: no offer).
func dialDeflate(t testing.TB, srv *gateway.Server, offer *codec.DeflateParams) *zClient {
	t.Helper()
	c := dialTCP(t, srv)
	key := codec.NewClientKey()
	var extra []byte
	if offer != nil {
		extra = codec.AppendDeflateOffer(nil, *offer)
	}
	c.writeRaw(codec.AppendClientRequest(nil, srv.Addr().String(), "/ws", key[:], nil, extra))
	status, resp := c.readHTTP()
	if status != 101 {
		t.Fatalf("upgrade: status %d\n%s", status, resp)
	}
	var r codec.Response
	if n, err := r.Parse(resp, 0); n == 0 || err != nil {
		t.Fatalf("upgrade response: n=%d err=%v", n, err)
	}
	if err := r.Check(key[:]); err != nil {
		t.Fatalf("upgrade response: %v", err)
	}
	z := &zClient{rawClient: c}
	p, ok, err := r.Deflate(offer)
	if err != nil {
		t.Fatalf("the server's extension answer fails the client checks of RFC 7692: %v\n%s", err, resp)
	}
	z.params, z.ok = p, ok
	return z
}

// compress returns msg compressed as the client sends it: BestSpeed, sync
// flushed, tail stripped (RFC 7692 §7.2.1), with the client's window as the
// dictionary under context takeover.
func (z *zClient) compress(msg []byte) []byte {
	var b bytes.Buffer
	ct, bits := z.params.Send(codec.RoleClient)
	var dict []byte
	if ct {
		dict = z.sendWin
	}
	w, _ := flate.NewWriterDict(&b, flate.BestSpeed, dict)
	w.Write(msg)
	w.Flush()
	out := b.Bytes()
	out = out[:len(out)-4] // 00 00 ff ff
	if ct {
		z.sendWin = lastN(append(z.sendWin, msg...), 1<<bits)
	}
	return out
}

// inflate decompresses a server message with the standard library.
func (z *zClient) inflate(p []byte) ([]byte, error) {
	ct, _ := z.params.Send(codec.RoleServer)
	var dict []byte
	if ct {
		dict = z.recvWin
	}
	in := append(append([]byte(nil), p...), 0x00, 0x00, 0xff, 0xff, 0x01, 0x00, 0x00, 0xff, 0xff)
	out, err := io.ReadAll(flate.NewReaderDict(bytes.NewReader(in), dict))
	if err != nil {
		return nil, err
	}
	if ct {
		z.recvWin = lastN(append(z.recvWin, out...), 32<<10)
	}
	return out, nil
}

func lastN(b []byte, n int) []byte {
	if len(b) > n {
		return append([]byte(nil), b[len(b)-n:]...)
	}
	return b
}

// sendZ sends msg compressed in frames of at most frag compressed bytes (0:
// one frame); only the first carries RSV1 (RFC 7692 §6.1).
func (z *zClient) sendZ(op byte, msg []byte, frag int) {
	zp := z.compress(msg)
	z.sendFrames(op, zp, frag, 4)
}

// sendFrames sends payload as one message in frames of at most frag bytes,
// the first with rsv.
func (z *zClient) sendFrames(op byte, payload []byte, frag int, rsv byte) {
	if frag <= 0 || frag >= len(payload) {
		f := msg(op, payload)
		f.rsv = rsv
		z.send(f)
		return
	}
	var frames []wframe
	for i := 0; i < len(payload); i += frag {
		end := min(i+frag, len(payload))
		f := wframe{op: opCont, data: payload[i:end], fin: end == len(payload)}
		if i == 0 {
			f.op, f.rsv = op, rsv
		}
		frames = append(frames, f)
	}
	z.send(frames...)
}

// readZ reads one data message, inflating it if it came compressed, and
// checks the server's framing: RSV1 only on a first frame (codec refuses it
// elsewhere), a compressed payload smaller than its plain text. It reports
// whether the message came compressed.
func (z *zClient) readZ() (ws.OpCode, []byte, bool) {
	z.t.Helper()
	var op ws.OpCode
	var msg []byte
	compressed := false
	for {
		h, p, err := z.readFrameRsv()
		if err != nil {
			z.t.Fatalf("readZ: %v", err)
		}
		switch {
		case h.OpCode == ws.OpPing || h.OpCode == ws.OpPong:
			continue
		case h.OpCode == ws.OpClose:
			code, reason, _ := codec.ParseCloseUnsafe(p)
			z.t.Fatalf("readZ: got close %d %q", code, reason)
		case h.OpCode != ws.OpContinuation:
			op = h.OpCode
			compressed = h.Rsv&codec.Rsv1 != 0
			if compressed && !z.ok {
				z.t.Fatalf("RSV1 from the server on a connection that negotiated nothing")
			}
		}
		msg = append(msg, p...)
		if h.Fin {
			break
		}
	}
	if !compressed {
		return op, msg, false
	}
	plain, err := z.inflate(msg)
	if err != nil {
		z.t.Fatalf("inflating the server's %d-byte message: %v", len(msg), err)
	}
	if len(msg) >= len(plain) {
		z.t.Fatalf("compressed message of %d bytes for %d plain: the plain frame was smaller", len(msg), len(plain))
	}
	return op, plain, true
}

// readFrameRsv is readFrame with RSV1 allowed where permessage-deflate
// allows it.
func (z *zClient) readFrameRsv() (ws.Header, []byte, error) {
	z.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var hb [codec.MaxHeaderSize]byte
	n := 0
	for {
		h, hn, err := codec.ParseHeader(hb[:n], codec.RoleClient, codec.Rsv1)
		if err != nil {
			return h, nil, err
		}
		if hn > 0 {
			p := make([]byte, h.Length)
			if _, err := io.ReadFull(z.r, p); err != nil {
				return h, nil, err
			}
			return h, p, nil
		}
		b, err := z.r.ReadByte()
		if err != nil {
			return h, nil, err
		}
		hb[n] = b
		n++
	}
}

// noise returns n bytes that do not compress.
func noise(n int, seed uint64) []byte {
	p := make([]byte, n)
	x := seed | 1
	for i := range p {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		p[i] = byte(x)
	}
	return p
}
