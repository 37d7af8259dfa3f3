//go:build linux

package main

import (
	"encoding/binary"
	"fmt"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// --compression: every connection offers permessage-deflate (RFC 7692)
// without context takeover either way, so that the client keeps no state
// per connection either; every message is compressed with the loop's
// Deflater and every compressed reply inflated with its Inflater. The
// payload is then JSON-like text (chat events), not the letter pattern,
// which would compress to nothing. The report adds payload bytes beside
// wire bytes, and the client's CPU covers the compression.

// deflateOffer is what the client offers and requires.
var deflateOffer = codec.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

// loopDeflate is a loop's compression state.
type loopDeflate struct {
	d     *codec.Deflater
	inf   *codec.Inflater
	zbuf  []byte           // a compressed message being sent
	plain []byte           // an inflated reply
	part  map[int32][]byte // compressed replies in progress, by connection index
	free  [][]byte         // buffers for part
}

// fillJSON writes chat events into the payload template.
func fillJSON(p []byte) {
	var b []byte
	for i := 0; len(b) < len(p); i++ {
		b = fmt.Appendf(b, `{"type":"message","room":"lobby","seq":%d,"user":"user%d","text":"hello number %d"},`, i, i%17, i*31)
	}
	copy(p, b)
}

// requestExtra returns the extension offer for the upgrade request, or nil.
func (l *loop) requestExtra() []byte {
	if !l.r.cfg.compression {
		return nil
	}
	return codec.AppendDeflateOffer(nil, deflateOffer)
}

// checkDeflate checks the server's answer; with --compression the offer
// must be accepted.
func (l *loop) checkDeflate(r *codec.Response) string {
	if !l.r.cfg.compression {
		return ""
	}
	o := deflateOffer
	_, ok, err := r.Deflate(&o)
	switch {
	case err != nil:
		return "handshake: " + err.Error()
	case !ok:
		return "handshake: compression declined"
	}
	return ""
}

// rsv returns the reserved bits the server's frames may carry.
func (l *loop) rsv() byte {
	if l.r.cfg.compression {
		return codec.Rsv1
	}
	return 0
}

// appendData appends a masked data frame of payload to dst, compressed
// under --compression.
func (l *loop) appendData(dst, payload []byte) []byte {
	l.ctr.add(cPayloadSent, int64(len(payload)))
	if !l.r.cfg.compression {
		return codec.AppendFrameMasked(dst, ws.OpBinary, true, payload, codec.NewMaskKey())
	}
	z := &l.z
	if z.d == nil {
		z.d = codec.NewDeflater()
	}
	z.zbuf = z.d.AppendCompress(z.zbuf[:0], payload, nil, codec.MaxDeflateWindowBits)
	key := codec.NewMaskKey()
	dst = codec.AppendHeader(dst, ws.Header{Fin: true, Rsv: codec.Rsv1, OpCode: ws.OpBinary, Length: int64(len(z.zbuf)), Masked: true, Mask: key})
	start := len(dst)
	dst = append(dst, z.zbuf...)
	codec.Cipher(dst[start:], key, 0)
	return dst
}

// gather keeps payload bytes of a compressed reply in progress.
func (l *loop) gather(c *conn, p []byte) {
	z := &l.z
	if z.part == nil {
		z.part = map[int32][]byte{}
	}
	b, ok := z.part[c.idx]
	if !ok && len(z.free) > 0 {
		b = z.free[len(z.free)-1][:0]
		z.free = z.free[:len(z.free)-1]
	}
	z.part[c.idx] = append(b, p...)
}

// inflated completes a compressed reply: it fills c's stamp from the plain
// text and counts it. It reports false on a corrupt message.
func (l *loop) inflated(c *conn) error {
	z := &l.z
	if z.inf == nil {
		z.inf = codec.NewInflater()
	}
	b := z.part[c.idx]
	delete(z.part, c.idx)
	z.inf.Reset(b, nil, 1<<30)
	var err error
	z.plain, err = z.inf.InflateAll(z.plain[:0])
	z.inf.Reset(nil, nil, 0)
	z.free = append(z.free, b)
	if err != nil {
		return err
	}
	c.stampN = uint8(copy(c.stamp[:], z.plain))
	l.ctr.add(cPayloadReceived, int64(len(z.plain)))
	return nil
}

// stampOf reads the send time of a reply.
func stampOf(c *conn) int64 { return int64(binary.LittleEndian.Uint64(c.stamp[:])) }
