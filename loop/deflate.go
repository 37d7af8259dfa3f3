package loop

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// permessage-deflate (RFC 7692) on a connection; docs/compression.md has
// the design. What a connection agreed is kept in the high bits of
// Conn.admitted, so that a connection that negotiated the common agreement
// (no context takeover either way, full windows: every browser with the
// default configuration) costs no byte more than one that did not; any
// other agreement, and the windows of context takeover, live in the
// connection's ext (deflateState). Compressors and decompressors belong to
// the loop (loopDeflate) or to the server's publish pool, never to a
// connection.
const (
	deflateOn  uint8 = 1 << 5 // permessage-deflate was negotiated
	deflateExt uint8 = 1 << 6 // the agreement is not commonDeflate: ext.deflate has it
	deflateMsg uint8 = 1 << 7 // the message being received is compressed (RSV1 on its first frame)
)

// commonDeflate is the agreement of the default configuration with every
// offer that does not ask for a smaller server window.
var commonDeflate = codec.DeflateParams{ServerNoContextTakeover: true, ClientNoContextTakeover: true}

// deflateState is a connection's agreement when it is not commonDeflate,
// with its windows under context takeover (allocated on first use and
// charged to the memory budget then).
type deflateState struct {
	params   codec.DeflateParams
	sendBits int          // the largest distance our matches may reach, log2
	send     codec.Window // our plain text sent compressed, with server context takeover
	recv     codec.Window // the peer's, with client context takeover
	charged  int64        // window bytes charged to the memory budget
}

// loopDeflate is a loop's compression engine: one Deflater (814 KB) and one
// Inflater (55 KB), created on first use, and the scratch of a compressed
// frame. The loop compresses what Send queued as it writes it, and inflates
// a message at its last frame, one message at a time.
type loopDeflate struct {
	d    *codec.Deflater
	inf  *codec.Inflater
	zbuf []byte   // the frame being compressed: header room, then the payload
	ziov [][]byte // a publish run's frames for subscribers that take the compressed ones
}

// deflating reports whether c negotiated permessage-deflate.
func (c *Conn) deflating() bool { return c.admitted&deflateOn != 0 }

// deflateParams returns c's agreement; c must be deflating.
func (c *Conn) deflateParams() codec.DeflateParams {
	if c.admitted&deflateExt != 0 {
		return c.ext.Load().deflate.params
	}
	return commonDeflate
}

// deflateExtState returns c's deflateState, or nil for commonDeflate.
func (c *Conn) deflateExtState() *deflateState {
	if c.admitted&deflateExt == 0 {
		return nil
	}
	return c.ext.Load().deflate
}

// negotiateDeflate answers the client's permessage-deflate offers, before
// any hook runs: the request's bytes do not outlive the handshake, so the
// agreement is kept in c for the 101 that upgrade writes.
func (l *eventLoop) negotiateDeflate(c *Conn, r *codec.Request) {
	cfg := l.srv.cfg.Deflate
	if cfg == nil {
		return // --compression off: every offer declined, as before
	}
	p, ok := r.NegotiateDeflate(*cfg)
	if !ok {
		return
	}
	c.admitted |= deflateOn
	if p == commonDeflate {
		return
	}
	c.admitted |= deflateExt
	d := &deflateState{params: p}
	sendCT, bits := p.Send(codec.RoleServer)
	d.sendBits = bits
	if sendCT {
		// The client keeps its whole window; ours may be shorter
		// (docs/compression.md, Handshake).
		own := int(cfg.WindowBits)
		if own == 0 {
			own = codec.DefaultDeflateWindowBits
		}
		d.send.Init(min(own, bits))
	}
	if recvCT, rbits := p.Receive(codec.RoleServer); recvCT {
		d.recv.Init(rbits) // negotiation made it no larger than ours
	}
	c.x().deflate = d
}

// appendUpgradeResponse appends the 101 for c, with its agreement if it
// negotiated compression.
func (l *eventLoop) appendUpgradeResponse(dst []byte, c *Conn, key, sub []byte) []byte {
	if !c.deflating() {
		return codec.AppendUpgradeResponse(dst, key, sub, nil)
	}
	return codec.AppendUpgradeResponseDeflate(dst, key, sub, c.deflateParams(), nil)
}

// deflateOpened counts c once its 101 is out.
func (l *eventLoop) deflateOpened(c *Conn) {
	if c.deflating() {
		l.stats.deflateUpgrades.Add(1)
		l.stats.deflateOpen.Add(1)
	}
}

// deflateClosed releases what c's compression held, when it is gone.
func (l *eventLoop) deflateClosed(c *Conn, prev uint8) {
	if !c.deflating() || prev < stateOpen {
		return
	}
	l.stats.deflateOpen.Add(-1)
	if d := c.deflateExtState(); d != nil {
		if d.charged != 0 && l.srv.mem != nil {
			l.chargeRaw(-d.charged)
		}
		d.charged = 0
		d.send.Reset()
		d.recv.Reset()
	}
}

// windowAppend adds msg to w, charging the window to the memory budget on
// its first use.
func (l *eventLoop) windowAppend(d *deflateState, w *codec.Window, msg []byte) {
	if cap(w.Bytes()) == 0 {
		n := int64(w.Size())
		d.charged += n
		if l.srv.mem != nil {
			l.chargeRaw(n)
		}
	}
	w.Append(msg)
}

// rsvAllowed returns the reserved bits c's frames may carry.
func (c *Conn) rsvAllowed() byte {
	if c.deflating() {
		return codec.Rsv1
	}
	return 0
}

// messageLimit returns the most payload bytes the message in progress may
// gather: MaxMessageSize, or for a compressed message the most a message of
// that plain size can take compressed (the plain size is checked as it
// inflates).
func (l *eventLoop) messageLimit(c *Conn) int64 {
	if c.admitted&deflateMsg != 0 {
		return int64(codec.DeflateBound(l.plainLimit(c)))
	}
	return int64(l.plainLimit(c))
}

// plainLimit is MaxMessageSize, plus the type byte on an envelope
// connection (docs/resume.md §2).
func (l *eventLoop) plainLimit(c *Conn) int {
	if c.session() != nil {
		return l.srv.cfg.MaxMessageSize + 1
	}
	return l.srv.cfg.MaxMessageSize
}

// startMessage records whether the message a first frame h starts is
// compressed.
func (c *Conn) startMessage(h ws.Header) {
	if h.Rsv&codec.Rsv1 != 0 {
		c.admitted |= deflateMsg
	} else {
		c.admitted &^= deflateMsg
	}
}

// checkUTF8 reports whether the frame payload being gathered is checked for
// UTF-8 as it arrives: text, and not compressed (the plain text is checked
// once inflated).
func (c *Conn) checkUTF8(op OpCode) bool {
	return op == ws.OpText && c.admitted&deflateMsg == 0
}

// inflateMessage replaces c's complete compressed message with its plain
// text: the size counts against MaxMessageSize as it inflates (1009 past
// it, having produced at most one byte more), corrupt data is 1007, and
// text is checked for UTF-8 once whole (1007). On error the data part's msgBuf holds what
// was produced, released with the connection like any failed message.
//
// It runs on the loop in one go: a message is at most MaxMessageSize plain
// (about 4 ms per MiB), the budget a loop already spends on copying and
// validating a message of that size.
func (l *eventLoop) inflateMessage(c *Conn, op OpCode) error {
	c.admitted &^= deflateMsg
	ld := &l.deflate
	if ld.inf == nil {
		ld.inf = codec.NewInflater()
	}
	limit := l.plainLimit(c)
	cd := c.d()
	z := cd.msgBuf
	var zb, dict []byte
	if z != nil {
		zb = z.b
	}
	d := c.deflateExtState()
	if d != nil {
		dict = d.recv.Bytes()
	}
	ld.inf.Reset(zb, dict, limit)
	p := getBuffer(min(max(4*len(zb), 512), limit+1))
	l.grewMessage(0, cap(p.b))
	var err error
	for done := false; !done && err == nil; {
		if len(p.b) == cap(p.b) {
			old := cap(p.b)
			p = growBuffer(p, min(2*old, limit+1))
			l.grewMessage(old, cap(p.b))
		}
		p.b, done, err = ld.inf.Inflate(p.b, cap(p.b)-len(p.b))
	}
	ld.inf.Reset(nil, nil, 0) // drop the references to zb and dict
	if z != nil {
		l.grewMessage(cap(z.b), 0)
		putBuffer(z)
	}
	cd.msgBuf = p
	cd.frame.msgLen = int32(len(p.b)) // ≤ plainLimit+1 ≤ 1 GiB+2
	switch {
	case err == codec.ErrMessageTooBig:
		l.stats.inflateErrors[inflateTooBig].Add(1)
		return err
	case err != nil:
		l.stats.inflateErrors[inflateCorrupt].Add(1)
		return err
	}
	l.stats.deflateInWire.Add(int64(len(zb)))
	l.stats.deflateInPlain.Add(int64(len(p.b)))
	if op == ws.OpText && !codec.ValidUTF8(p.b) {
		return codec.ErrInvalidUTF8
	}
	if d != nil && d.recv.Size() > 0 {
		l.windowAppend(d, &d.recv, p.b)
	}
	return nil
}

// outFrame returns the frame to write for a message Send queued as frame
// (unmasked, FIN, no reserved bits): frame itself, or for a deflating
// connection and a payload of at least CompressionMinSize its compressed
// form, when that is smaller, in the loop's scratch (valid until the next
// call). With server context takeover the compression uses c's send window
// and the window then takes the payload; messages sent plain stay out of it
// (the peer's decoder never sees them).
func (l *eventLoop) outFrame(c *Conn, frame []byte) []byte {
	if !c.deflating() || len(frame) < 2 {
		return frame
	}
	hn := 2
	switch frame[1] & 0x7f {
	case 126:
		hn = 4
	case 127:
		hn = 10
	}
	payload := frame[hn:]
	if len(payload) < l.srv.cfg.CompressionMinSize {
		l.stats.deflateSkipped.Add(1)
		return frame
	}
	bits := codec.MaxDeflateWindowBits
	var dict []byte
	d := c.deflateExtState()
	if d != nil {
		bits = d.sendBits
		dict = d.send.Bytes()
	}
	ld := &l.deflate
	if ld.d == nil {
		ld.d = codec.NewDeflater()
	}
	if cap(ld.zbuf) < codec.MaxHeaderSize {
		ld.zbuf = make([]byte, 0, 4096)
	}
	l.stats.compressions.Add(1)
	// Compress after room for the longest header, then put the header
	// right before the payload: no copy of the compressed bytes.
	out := ld.d.AppendCompress(ld.zbuf[:codec.MaxHeaderSize], payload, dict, bits)
	ld.zbuf = out[:0]
	zlen := len(out) - codec.MaxHeaderSize
	if zlen >= len(payload) {
		l.stats.deflateSkipped.Add(1)
		return frame // incompressible: never send more than the plain frame
	}
	h := ws.Header{Fin: true, Rsv: codec.Rsv1, OpCode: ws.OpCode(frame[0] & 0x0f), Length: int64(zlen)}
	var hb [codec.MaxHeaderSize]byte
	hl := codec.PutHeader(hb[:], h)
	start := codec.MaxHeaderSize - hl
	copy(out[start:], hb[:hl])
	l.stats.deflateOutPlain.Add(int64(len(payload)))
	l.stats.deflateOutWire.Add(int64(zlen))
	if d != nil && d.send.Size() > 0 {
		l.windowAppend(d, &d.send, payload)
	}
	return out[start:]
}

// Why a compressed message was refused (Stats.InflateErrors).
const (
	inflateCorrupt = iota // not DEFLATE (1007)
	inflateTooBig         // past MaxMessageSize once inflated (1009)
	numInflateErrors
)

var inflateErrorNames = [numInflateErrors]string{"corrupt", "too_big"}
