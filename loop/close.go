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
		c.flags.set(fClosing)
		c.closeCode, c.cause = code, causePeer
		if len(reason) > 0 {
			c.x().closeReason = string(reason)
		}
		l.scratch = codec.AppendClose(l.scratch[:0], reply, "")
		if l.write(c, l.scratch) && c.gc().OutboundBuffered() > 0 {
			// gnet drops the output it cannot write at once when it
			// closes, our close frame last: close once it is out, or at
			// the close timeout. fire looks at each tick.
			c.flags.set(fDiscard)
			c.d().linger = true
			// Nothing after the peer's close frame means anything
			// (§5.5.1): drop it now, not at the next read, which may
			// never come, so that gnet does not keep it meanwhile.
			_, _ = c.gc().Discard(-1)
			l.armClose(c)
			l.schedule(c, l.srv.now()+int64(l.srv.cfg.TimerTick))
			return gnet.None, true
		}
		return gnet.Close, true
	}
	return gnet.None, false
}

// startClose sends our close frame and waits, up to the close timeout, for
// the peer's (state closing). Data still arriving is read and skipped; a
// connection whose input was paused reads again, to find the answer.
func (l *eventLoop) startClose(c *Conn, code StatusCode, reason string, cause closeCause) {
	if c.state != stateOpen {
		return
	}
	c.state = stateClosing
	c.flags.set(fClosing)
	c.closeCode, c.cause = code, cause
	if reason != "" {
		c.x().closeReason = reason
	}
	if e := c.ext.Load(); e != nil && e.failErr != nil {
		l.dropPendingFail(c, e) // this close wins
	}
	l.dropAssembly(c)
	c.dropMsgBuf()
	l.scratch = codec.AppendClose(l.scratch[:0], code, reason)
	if l.write(c, l.scratch) {
		l.armClose(c)
		if e := c.ext.Load(); c.flags.has(fInPaused) || e != nil && e.pausedAt != 0 {
			l.resumeIn(c)
		}
	}
}

// fail closes the connection for a violation in a stream whose framing is
// still intact (bad UTF-8, fragmentation rules, size): our close frame goes
// out and reading goes on, to find the peer's answer. If messages received
// before the violation are still with the handler, the close waits for them
// (deferFail). stop reports that the caller must return act.
func (l *eventLoop) fail(c *Conn, err error) (act gnet.Action, stop bool) {
	if c.state != stateOpen {
		return gnet.Close, true
	}
	if l.deferFail(c, err, false) {
		return gnet.None, true
	}
	return l.failNow(c, err)
}

// failNow is fail without waiting for the handler.
func (l *eventLoop) failNow(c *Conn, err error) (act gnet.Action, stop bool) {
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
	case err == errInboundLimit:
		cause = causeInboundOverflow
	}
	l.startClose(c, code, closeReason(err), cause)
	if c.state == stateClosed {
		return gnet.Close, true
	}
	return gnet.None, false
}

// failStream closes the connection when the rest of the stream will not
// be parsed: after a bad frame header, or a frame too big to read. If
// messages received before the bad frame are still with the handler, the
// close waits for them (deferFail).
func (l *eventLoop) failStream(c *Conn, err error) gnet.Action {
	if c.state != stateOpen {
		return gnet.Close
	}
	if l.deferFail(c, err, true) {
		return gnet.None
	}
	return l.failStreamNow(c, err)
}

// failStreamNow is failStream without waiting for the handler. Our close
// frame goes out followed by a FIN (shutdown of our sending side), and the
// input is discarded until the peer closes or the close timeout ends it.
// Closing the socket at once would risk a reset that destroys our close
// frame in the peer's receive queue while we still hold unread data from
// it; the FIN tells the peer we are done without that risk.
func (l *eventLoop) failStreamNow(c *Conn, err error) gnet.Action {
	if c.state != stateOpen {
		return gnet.Close
	}
	cause := causeProtocol
	switch err {
	case codec.ErrMessageTooBig:
		cause = causeTooBig
	case errInboundLimit:
		cause = causeInboundOverflow
	}
	l.startClose(c, codec.CloseCode(err), closeReason(err), cause)
	if c.state == stateClosed {
		return gnet.Close
	}
	c.flags.set(fDiscard)
	gc := c.gc()
	_, _ = gc.Discard(-1)
	if gc.OutboundBuffered() == 0 {
		_ = unix.Shutdown(gc.Fd(), unix.SHUT_WR)
	}
	return gnet.None
}

// deferFail holds a protocol error back until the handler is done with
// the messages that arrived, whole and valid, before it: their replies
// must reach the client before our close frame. The connection parses and
// reads nothing more meanwhile. The close goes out on cmdFailNow, queued
// behind the replies in the loop's inbox: by the worker that empties the
// mailbox, or here if the handler is idle already (its last replies may
// still be in the inbox). The close timeout bounds the wait. It reports
// false if the error cannot wait (the inbox is shut).
func (l *eventLoop) deferFail(c *Conn, err error, stream bool) bool {
	c.mu.Lock()
	busy := c.mflags&(mInflight|mWaiting) != 0 || c.pending()
	if busy {
		c.mflags |= mFailPending
	}
	c.mu.Unlock()
	if !busy && !l.enqueue(command{kind: cmdFailNow, c: c}) {
		return false
	}
	e := c.x()
	e.failErr, e.failStream = err, stream
	e.failAt = l.srv.now() + int64(l.srv.cfg.CloseTimeout)
	c.flags.set(fInPaused)
	l.pauseReads(c)
	if !c.timer.Scheduled() || e.failAt < c.timer.Deadline() {
		l.schedule(c, e.failAt)
	}
	return true
}

// failPendingNow sends the close that deferFail held back, on the loop:
// the handler has run the messages before the error (cmdFailNow), or the
// close timeout passed.
func (l *eventLoop) failPendingNow(c *Conn) {
	e := c.ext.Load()
	if e == nil || e.failErr == nil {
		return
	}
	err, stream := e.failErr, e.failStream
	l.dropPendingFail(c, e)
	if c.state != stateOpen || c.gp == nil {
		return
	}
	if stream {
		l.finish(c, l.failStreamNow(c, err))
		return
	}
	// startClose resumes the input, which is parsed in the closing state:
	// data is skipped, the peer's close frame ends the connection.
	act, _ := l.failNow(c, err)
	l.finish(c, act)
}

// dropPendingFail forgets a held-back protocol error.
func (l *eventLoop) dropPendingFail(c *Conn, e *connExt) {
	e.failErr = nil
	c.mu.Lock()
	c.mflags &^= mFailPending
	c.mu.Unlock()
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
	if c.gp == nil {
		return
	}
	c.cause = cause
	_ = l.el.Close(c.gc())
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
	gc := c.gc()
	if gc == nil {
		return false
	}
	l.writeCalls++
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
	c.flags.set(fClosing)
	c.gp = nil
	l.disarm(c)
	// A session's anchor stays (in the table, its topics and the user
	// index, its handler not told) while the session lives on
	// (session_life.go); a later transport of a session is not the
	// handler's.
	keep := l.sessionLost(c, prev)
	transport := c.logical() != c
	if !keep {
		l.remove(c)
	}
	if e := c.ext.Load(); e != nil {
		if len(e.subs) > 0 && !keep {
			l.unsubscribe(c, "")
		}
		if e.pausedAt != 0 {
			l.stats.pausedNanos.Add(max(l.srv.now()-e.pausedAt, 0))
			l.stats.pausedConns.Add(-1)
			e.pausedAt = 0
		}
	}
	l.memClosed(c, prev)
	l.deflateClosed(c, prev)
	c.dropMsgBuf()
	l.releaseRequest(c)
	l.release(c)
	l.stats.connsOpen.Add(-1)
	c.flags.set(fGone) // after the last write of the traffic counts
	if prev < stateOpen {
		return // never upgraded: the handler never heard of it
	}
	if c.User() != "" && !keep {
		l.srv.users.del(c)
	}
	l.stats.closes[c.cause].Add(1)
	if keep || transport {
		return
	}
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
