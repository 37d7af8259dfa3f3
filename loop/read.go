package loop

import (
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// traffic handles a read event for c.
func (l *eventLoop) traffic(c *Conn) gnet.Action {
	switch c.state {
	case stateProxy:
		return l.readProxy(c)
	case stateHandshake:
		return l.readHandshake(c)
	case stateDeferred:
		// The client should wait for our answer; what it sends early
		// stays buffered, and past the header bound its reads pause
		// until the upgrade is decided (acceptDeferred parses it).
		if c.gc().InboundBuffered() > l.srv.cfg.MaxHeaderBytes && !l.pauseReads(c) {
			return gnet.Close
		}
		l.setUnparsed(c, c.gc().InboundBuffered())
		return gnet.None
	case stateOpen, stateClosing:
		if c.flushWatched() {
			// Refresh the outbound snapshot (outbound.go) before the
			// handler sees this input: a client that has caught up and
			// speaks again must not be refused on a stale figure.
			l.setOutBuffered(c, int64(c.gc().OutboundBuffered()))
		}
		if c.flags.has(fDiscard) {
			_, _ = c.gc().Discard(-1)
			return gnet.None
		}
		act := l.readFrames(c)
		if act != gnet.None || c.gp == nil {
			return act
		}
		n := c.gc().InboundBuffered()
		l.setUnparsed(c, n)
		if c.flags.has(fInPaused) && n > 0 && !readsPaused(c) {
			// Input keeps arriving although it is not parsed: the
			// poller refused the pause (inbound.go).
			act, _ = l.checkHeld(c)
		}
		return act
	}
	_, _ = c.gc().Discard(-1)
	return gnet.None
}

// readFrames consumes every complete frame and every payload byte that has
// arrived. Payload is copied into the message buffer as it arrives, so gnet
// keeps bytes only for an incomplete header or control frame (at most 131
// bytes) and a slow large message costs its own size, not twice.
func (l *eventLoop) readFrames(c *Conn) gnet.Action {
	gc := c.gc()
	// An idle connection's pings, pongs and close are parsed whole from
	// gnet's buffer: only a data frame needs the data part (conn_data.go).
	d := c.data.Load()
	for {
		if c.flags.has(fInPaused) {
			// The mailbox is full (inbound.go), or a protocol error
			// waits for the handler (close.go): leave the rest in
			// gnet's buffer and stop reading the socket.
			l.pauseReads(c)
			return gnet.None
		}
		avail := gc.InboundBuffered()
		if avail == 0 {
			return gnet.None
		}
		if d != nil && d.frame.inFrame {
			f := &d.frame
			n := int(min(int64(avail), f.remaining))
			if n > 0 {
				// Payload is proof of life too: a peer in the middle of
				// a frame cannot send its pong before the frame ends.
				c.heard(l.srv.now())
				p, _ := gc.Peek(n)
				ok := true
				if c.state == stateOpen {
					ok = l.payload(c, p)
				}
				_, _ = gc.Discard(n)
				f.remaining -= int64(n)
				if !ok {
					if act, stop := l.fail(c, codec.ErrInvalidUTF8); stop {
						return act
					}
				}
			}
			if f.remaining > 0 {
				return gnet.None
			}
			f.inFrame = false
			if f.fin {
				if act, stop := l.messageDone(c); stop {
					return act
				}
			}
			continue
		}

		hdr, _ := gc.Peek(min(avail, codec.MaxHeaderSize))
		h, hn, err := codec.ParseHeader(hdr, codec.RoleServer, c.rsvAllowed())
		if err != nil {
			return l.failStream(c, err)
		}
		if hn == 0 {
			return gnet.None
		}
		c.heard(l.srv.now())

		if h.OpCode.IsControl() {
			total := hn + int(h.Length)
			if avail < total {
				return gnet.None // wait for the whole control frame (≤131 bytes)
			}
			p, _ := gc.Peek(total)
			var payload [codec.MaxControlPayload]byte
			pl := payload[:h.Length]
			copy(pl, p[hn:])
			codec.Cipher(pl, h.Mask, 0)
			_, _ = gc.Discard(total)
			if act, stop := l.control(c, h.OpCode, pl); stop {
				return act
			}
			continue
		}

		// A data frame. Once our close frame is out, data is skipped
		// unchecked: only the peer's close frame matters (RFC 6455 §5.5.1).
		d = c.d()
		f := &d.frame
		if c.state == stateOpen {
			if h.OpCode != ws.OpContinuation && f.msgOp == 0 {
				c.startMessage(h) // RSV1: compressed (deflate.go)
			}
			if err := l.checkData(c, h); err != nil {
				if err == codec.ErrMessageTooBig {
					return l.failStream(c, err) // not worth reading
				}
				_, _ = gc.Discard(hn)
				l.skipFrame(c, h)
				if act, stop := l.fail(c, err); stop {
					return act
				}
				continue
			}
			if l.srv.mem != nil && !l.reserveFrame(c, h.Length, h.OpCode == ws.OpContinuation, h.Fin) {
				return gnet.None // paused for the memory budget (budget.go)
			}
		}
		_, _ = gc.Discard(hn)
		if h.OpCode != ws.OpContinuation {
			f.msgOp = h.OpCode
			f.msgLen = 0
			d.utf8.Reset()
		}
		f.inFrame, f.fin, f.remaining, f.mask, f.maskPos = true, h.Fin, h.Length, h.Mask, 0
		if h.Length == 0 && h.Fin {
			f.inFrame = false
			if act, stop := l.messageDone(c); stop {
				return act
			}
		} else if h.Length == 0 {
			f.inFrame = false
		}
	}
}

// checkData applies the fragmentation rules of RFC 6455 §5.4 and the
// message size limit to a data frame header.
func (l *eventLoop) checkData(c *Conn, h ws.Header) error {
	f := &c.d().frame
	if h.OpCode == ws.OpContinuation {
		if f.msgOp == 0 {
			return codec.ErrContinuationUnexpected
		}
	} else if f.msgOp != 0 {
		return codec.ErrContinuationExpected
	}
	msgLen := int64(f.msgLen)
	if h.OpCode != ws.OpContinuation {
		msgLen = 0
	}
	// msgLen <= max holds (every frame before passed this check), so
	// max-msgLen cannot overflow; msgLen+h.Length could, for a declared
	// length near 2^63, and would then let the frame through.
	if h.Length > l.messageLimit(c)-msgLen {
		return codec.ErrMessageTooBig
	}
	return nil
}

// skipFrame makes the reader skip the payload of a frame whose header was
// consumed but refused, so that the stream stays in sync while we wait for
// the peer's close.
func (l *eventLoop) skipFrame(c *Conn, h ws.Header) {
	f := &c.d().frame
	f.inFrame, f.fin, f.remaining = h.Length > 0, h.Fin, h.Length
	f.msgOp = ws.OpBinary // closing: nothing is delivered or checked
}

// payload appends a chunk of the current frame's payload to the message,
// unmasks it and validates text as it goes. It reports false on invalid
// UTF-8: the message fails at the chunk that holds the first bad byte.
func (l *eventLoop) payload(c *Conn, p []byte) bool {
	d := c.d()
	f := &d.frame
	old := 0
	if d.msgBuf != nil {
		old = cap(d.msgBuf.b)
	}
	b := growBuffer(d.msgBuf, int(f.msgLen)+len(p))
	l.grewMessage(old, cap(b.b))
	d.msgBuf = b
	start := len(b.b)
	b.b = append(b.b, p...)
	chunk := b.b[start:]
	codec.Cipher(chunk, f.mask, int(f.maskPos))
	f.maskPos = uint8((int(f.maskPos) + len(p)) & 3)
	f.msgLen += int32(len(p)) // ≤ MaxMessageSize ≤ 1 GiB (checkData)
	if c.checkUTF8(f.msgOp) {
		return d.utf8.Write(chunk)
	}
	return true
}

// messageDone completes the message in progress. stop reports that the
// caller must return act.
func (l *eventLoop) messageDone(c *Conn) (act gnet.Action, stop bool) {
	d := c.d()
	f := &d.frame
	op := f.msgOp
	f.msgOp = 0
	if c.state != stateOpen {
		return gnet.None, false
	}
	if c.admitted&deflateMsg != 0 {
		if err := l.inflateMessage(c, op); err != nil {
			return l.fail(c, err)
		}
	}
	if op == ws.OpText && !d.utf8.Complete() {
		return l.fail(c, codec.ErrInvalidUTF8)
	}
	s := l.srv
	if s.cfg.MaxMsgRate > 0 && !l.allowMessage(c, s.now()) {
		return l.fail(c, errRateLimit)
	}
	if ss := c.session(); ss != nil {
		deliver, err := l.envelopeIn(c, ss, op) // session_frames.go
		if !deliver {
			l.dropAssembly(c)
			putBuffer(d.msgBuf)
			d.msgBuf = nil
			f.msgLen = 0
			if err != nil {
				return l.fail(c, err)
			}
			return gnet.None, false
		}
		f.msgLen-- // the type byte
	}
	b := d.msgBuf
	d.msgBuf = nil
	l.handOff(b)
	n := int(f.msgLen)
	f.msgLen = 0
	l.stats.messagesIn.Add(1)
	l.stats.bytesIn.Add(int64(n))
	c.countIn(n, s.now())
	l.deliver(c, event{kind: evMessage, op: op, buf: b})
	return gnet.None, false
}

// errRateLimit closes a connection over Config.MaxMsgRate.
var errRateLimit = &codec.CloseError{Code: ws.StatusPolicyViolation, Reason: "message rate limit exceeded"}
