package loop

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// FuzzReadDeflate drives the real reader on a connection that negotiated
// permessage-deflate with fuzzer-chosen frames: RSV1 anywhere, payloads
// that are valid compressed messages (of fuzzer bytes, some inflating far
// past the limit) or raw bytes, fragments, control frames, in
// fuzzer-chosen pieces. After every piece: the compressed message being
// gathered stays within DeflateBound(MaxMessageSize) (its buffer within
// twice that), an inflated message within MaxMessageSize, and nothing
// panics; after the close no buffer is kept.
func FuzzReadDeflate(f *testing.F) {
	f.Add([]byte{0x0d, 0, 40, 'h', 'e', 'l', 'l', 'o'}, uint16(100), uint16(7))         // text, FIN, RSV1, compressed "hello..."
	f.Add([]byte{0x0d, 0xff, 0xff, 0}, uint16(1000), uint16(3))                         // a bomb of zeros
	f.Add([]byte{0x08, 0, 5, 0xff, 0x09, 0, 5, 0x06, 0, 3, 0}, uint16(500), uint16(13)) // raw, then RSV1 on a continuation
	f.Add([]byte{0x19, 0, 10, 1, 2, 3, 0x0e, 0, 4, 'a', 'b'}, uint16(65535), uint16(1)) // compressed binary fragment, ping, end
	s := fuzzServer(f)
	s.cfg.Deflate = &codec.DeflateConfig{}
	s.cfg.CompressionMinSize = 1
	d := codec.NewDeflater()
	f.Fuzz(func(t *testing.T, recs []byte, maxMsg, chunk uint16) {
		limit := 1 + int(maxMsg)
		s.cfg.MaxMessageSize = limit
		stream := deflateFrames(append([]byte(nil), fuzzDeflateRequest...), recs, d)
		l, c, gc := fuzzConn(s)
		rng := rand.New(rand.NewPCG(uint64(chunk), 1))
		zBound := codec.DeflateBound(limit)
		for len(stream) > 0 && c.state != stateClosed {
			n := min(len(stream), 1+rng.IntN(int(chunk)%8192+1))
			gc.in = append(gc.in, stream[:n]...)
			stream = stream[n:]
			if l.traffic(c) == gnet.Close {
				break
			}
			if c.state == stateOpen && !c.deflating() {
				t.Fatal("the offer was not accepted")
			}
			if b := c.d().msgBuf; b != nil && (len(b.b) > zBound || cap(b.b) > max(2*zBound, 1<<minClassShift)) {
				t.Fatalf("message buffer len %d cap %d, max message %d (compressed bound %d)", len(b.b), cap(b.b), limit, zBound)
			}
			if c.flags.has(fInPaused) {
				break
			}
		}
		l.closed(c, nil)
		if c.d().msgBuf != nil {
			t.Fatal("message buffer kept after close")
		}
	})
}

// fuzzDeflateRequest offers permessage-deflate.
var fuzzDeflateRequest = codec.AppendClientRequest(nil, "x", "/ws", []byte("dGhlIHNhbXBsZSBub25jZQ=="), nil,
	codec.AppendDeflateOffer(nil, codec.DeflateParams{}))

// deflateFrames appends the frames recs describe. Each record is
//
//	kind  bits 0-1: text, binary, continuation, ping; bit 2: FIN; bit 3:
//	      RSV1; bit 4: the payload is the compression of n bytes (below)
//	      instead of the n bytes themselves
//	n     2 bytes: how many bytes follow (fewer if the input ends); with
//	      bit 4 and n > 1000, n*64 zero bytes are compressed: a bomb
//
// A record cut short ends the list.
func deflateFrames(dst, recs []byte, d *codec.Deflater) []byte {
	ops := [4]ws.OpCode{ws.OpText, ws.OpBinary, ws.OpContinuation, ws.OpPing}
	for len(recs) >= 3 {
		kind := recs[0]
		n := int(binary.BigEndian.Uint16(recs[1:3]))
		recs = recs[3:]
		take := min(n, len(recs))
		p := recs[:take]
		recs = recs[take:]
		if kind&0x10 != 0 {
			plain := p
			if n > 1000 {
				plain = make([]byte, n*64)
			}
			p = d.AppendCompress(nil, plain, nil, 15)
		}
		op := ops[kind&3]
		if op == ws.OpPing && len(p) > codec.MaxControlPayload {
			p = p[:codec.MaxControlPayload]
		}
		h := ws.Header{Fin: kind&4 != 0 || op == ws.OpPing, OpCode: op, Length: int64(len(p)), Masked: true, Mask: fuzzKey}
		if kind&8 != 0 {
			h.Rsv = codec.Rsv1
		}
		dst = codec.AppendHeader(dst, h)
		start := len(dst)
		dst = append(dst, p...)
		codec.Cipher(dst[start:], fuzzKey, 0)
	}
	return dst
}
