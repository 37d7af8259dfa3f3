package loop

import (
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"

	"github.com/wsgate/wsgate/codec"
)

// control handles a control frame (RFC 6455 §5.5). stop reports that the
// caller must return act.
func (l *eventLoop) control(c *Conn, op ws.OpCode, p []byte) (act gnet.Action, stop bool) {
	switch op {
	case ws.OpPing:
		// §5.5.2: answer with a pong carrying the same payload, also
		// between the fragments of a message (§5.4).
		if c.state == stateOpen {
			l.scratch = codec.AppendFrame(l.scratch[:0], ws.OpPong, true, p)
			if !l.fits(c, len(l.scratch)) {
				// Pongs count against MaxOutbound too, or a client that
				// pings without reading grows our queue without end;
				// §5.5.3 lets a later pong answer the skipped pings.
				l.refusedOnLoop(c)
				break
			}
			if !l.write(c, l.scratch) {
				return gnet.Close, true
			}
		}
	case ws.OpPong:
		// Proof of life only: readFrames stamped lastRead.
	case ws.OpClose:
		if c.state == stateClosing {
			return gnet.Close, true // the answer to our close: done
		}
		code, reason, err := codec.ParseCloseUnsafe(p)
		if err != nil {
			// The peer has closed anyway: say why, and drop.
			l.startClose(c, codec.CloseCode(err), closeReason(err), causeProtocol)
			return gnet.Close, true
		}
		// §5.5.1: echo the status code; a close without one is answered
		// with 1000. The server closes TCP first (§7.1.1).
		reply := code
		if code == ws.StatusNoStatusRcvd {
			reply = ws.StatusNormalClosure
		}
		c.state = stateClosing
		c.closing.Store(true)
		c.closeCode, c.cause = code, causePeer
		if len(reason) > 0 {
			c.x().closeReason = string(reason)
		}
		l.scratch = codec.AppendClose(l.scratch[:0], reply, "")
		if l.write(c, l.scratch) && c.gc.OutboundBuffered() > 0 {
			// gnet drops the output it cannot write at once when it
			// closes, our close frame last: close once it is out, or at
			// the close timeout. fire looks at each tick.
			c.discard, c.linger = true, true
			// Nothing after the peer's close frame means anything
			// (§5.5.1): drop it now, not at the next read, which may
			// never come, so that gnet does not keep it meanwhile.
			_, _ = c.gc.Discard(-1)
			l.armClose(c)
			l.schedule(c, l.srv.now()+int64(l.srv.opts.TimerTick))
			return gnet.None, true
		}
		return gnet.Close, true
	}
	return gnet.None, false
}

// startClose sends our close frame and waits, up to the close timeout, for
// the peer's (state closing). Data still arriving is read and skipped.
func (l *eventLoop) startClose(c *Conn, code StatusCode, reason string, cause closeCause) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosing
	c.closing.Store(true)
	c.closeCode, c.cause = code, cause
	if reason != "" {
		c.x().closeReason = reason
	}
	putBuffer(c.msgBuf)
	c.msgBuf = nil
	l.scratch = codec.AppendClose(l.scratch[:0], code, reason)
	if l.write(c, l.scratch) {
		l.armClose(c)
	}
}

// fail closes the connection for a violation in a stream whose framing is
// still intact (bad UTF-8, fragmentation rules, size): our close frame goes
// out and reading goes on, to find the peer's answer. stop reports that the
// caller must return act.
func (l *eventLoop) fail(c *Conn, err error) (act gnet.Action, stop bool) {
	if c.state != stateOpen {
		return gnet.Close, true
	}
	code := codec.CloseCode(err)
	cause := causeProtocol
	switch {
	case code == ws.StatusMessageTooBig:
		cause = causeTooBig
	case err == errRateLimit:
		cause = causeRateLimit
	}
	l.startClose(c, code, closeReason(err), cause)
	if c.state == stateClosed {
		return gnet.Close, true
	}
	return gnet.None, false
}

// failStream closes the connection when the rest of the stream will not
// be parsed: after a bad frame header, or a frame too big to read. Our
// close frame goes out followed by a FIN (shutdown of our sending side), and
// the input is discarded until the peer closes or the close timeout ends
// it. Closing the socket at once would risk a reset that destroys our close
// frame in the peer's receive queue while we still hold unread data from
// it; the FIN tells the peer we are done without that risk.
func (l *eventLoop) failStream(c *Conn, err error) gnet.Action {
	if c.state != stateOpen {
		return gnet.Close
	}
	cause := causeProtocol
	if err == codec.ErrMessageTooBig {
		cause = causeTooBig
	}
	l.startClose(c, codec.CloseCode(err), closeReason(err), cause)
	if c.state == stateClosed {
		return gnet.Close
	}
	c.discard = true
	gc := c.gc
	_, _ = gc.Discard(-1)
	if gc.OutboundBuffered() == 0 {
		_ = unix.Shutdown(gc.Fd(), unix.SHUT_WR)
	}
	return gnet.None
}

// closeReason returns the short reason to put in a close frame for err.
func closeReason(err error) string {
	if ce, ok := err.(*codec.CloseError); ok {
		return ce.Reason
	}
	return ""
}

// drop closes the TCP connection at once, without a closing handshake.
func (l *eventLoop) drop(c *Conn, cause closeCause) {
	if c.gc == nil {
		return
	}
	c.cause = cause
	_ = l.el.Close(c.gc)
}

// closeAll closes every connection of the loop: open ones with a closing
// handshake, the others at once.
func (l *eventLoop) closeAll(code StatusCode, reason string) {
	for c := range l.conns {
		switch c.state {
		case stateOpen:
			l.startClose(c, code, reason, causeShutdown)
		case stateProxy, stateHandshake, stateDeferred:
			l.drop(c, causeShutdown)
		}
	}
}

// write sends b on c from the loop. gnet copies what the socket does not
// take at once. It reports false if the connection is gone, in which case
// gnet has already run OnClose.
func (l *eventLoop) write(c *Conn, b []byte) bool {
	gc := c.gc
	if gc == nil {
		return false
	}
	if _, err := gc.Write(b); err != nil {
		return false
	}
	l.stats.bytesOut.Add(int64(len(b)))
	return true
}

// closed runs from gnet's OnClose: the TCP connection is gone.
func (l *eventLoop) closed(c *Conn, err error) {
	prev := c.state
	c.state = stateClosed
	c.closing.Store(true)
	c.gc = nil
	l.remove(c)
	l.disarm(c)
	if e := c.ext.Load(); e != nil && len(e.subs) > 0 {
		l.unsubscribe(c, "")
	}
	putBuffer(c.msgBuf)
	c.msgBuf = nil
	l.releaseRequest(c)
	l.release(c)
	l.stats.connsOpen.Add(-1)
	c.gone.Store(true) // after the last write of the traffic counts
	if prev < stateOpen {
		return // never upgraded: the handler never heard of it
	}
	if c.User() != "" {
		l.srv.users.del(c)
	}
	l.stats.closes[c.cause].Add(1)
	code := c.closeCode
	if code == 0 || code == ws.StatusNoStatusRcvd && c.cause != causePeer {
		code = ws.StatusAbnormalClosure // no close frame was exchanged (§7.1.5)
	}
	var reason string
	if e := c.ext.Load(); e != nil {
		reason = e.closeReason
	}
	if reason == "" && err != nil && code == ws.StatusAbnormalClosure {
		reason = err.Error()
	}
	l.deliver(c, event{kind: evClose, err: &codec.CloseError{Code: code, Reason: reason}})
}
