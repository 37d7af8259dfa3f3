package loop

import (
	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// Inbound flow control. A connection holds, inbound, the messages waiting
// for its handler (its mailbox) and the bytes read from its socket but not
// parsed yet (gnet's inbound buffer). Once the mailbox reaches
// Config.MailboxMessages or Config.MailboxBytes, the loop stops parsing
// the connection's input and takes its read interest out of the poller
// (gnet's PauseRead, third_party/gnet/PATCH.md): the kernel's receive
// buffer fills and TCP slows the client down. When a worker has run the
// mailbox down to half of both bounds it asks the loop to resume: the loop
// parses what was left in gnet's buffer (which raises no new OnTraffic),
// then reads the socket again. Nothing is dropped and nothing closes by
// count, whatever the burst; a full worker pool only makes messages wait
// the same way.
//
// A paused connection is not dead: its pings are not sent and its pong
// deadline does not run while it is paused (timers.go), and a close that
// starts meanwhile resumes reading to find the peer's answer.
//
// Config.MaxInbound bounds the bytes a connection holds (mailbox plus
// unparsed input) as a backstop: with a working pause the unparsed part
// stops at what one read brought, so only a connection whose pause could
// not be applied (the poller refused it) reaches it, and is closed with
// 1008, its unparsed input dropped and counted.
//
// Accounting: the bytes a connection holds inbound change in three places
// only, below: holdIn and releaseIn for the mailbox (under Conn.mu) and
// setUnparsed for gnet's buffer (on the loop). The memory budget
// (budget.go) charges gnet's buffer in setUnparsed; a message is charged
// from its frame header to the end of its handler (putHandled), which is
// longer than it stays in the mailbox.

// holdIn charges n payload bytes of a message queued for the handler to c.
// It runs on the loop with c.mu held. Both bounds are under 1 GiB
// (NewServer), so the sum fits.
func (c *Conn) holdIn(n int) { c.d().mbytes += int32(n) }

// releaseIn returns n payload bytes when a worker takes a message from the
// mailbox, with c.mu held.
func (c *Conn) releaseIn(n int) { c.d().mbytes -= int32(n) }

// setUnparsed records that gnet holds n bytes of c's input unparsed, on the
// loop, after each parse.
func (l *eventLoop) setUnparsed(c *Conn, n int) {
	v := int32(min(n, 1<<31-1))
	d := c.data.Load()
	if d == nil {
		if v == 0 {
			return // an idle connection's zero (conn_data.go)
		}
		d = c.d()
	}
	if l.srv.mem != nil && v != d.frame.unparsed {
		k := memUnparsed
		if c.state < stateOpen {
			k = memHandshake // a request's bytes, or what follows a deferred one
		}
		l.charge(k, int64(v-d.frame.unparsed))
	}
	d.frame.unparsed = v
}

// noteMailbox runs in deliver, with c.mu held, after a message joined the
// mailbox: it publishes the gauges and pauses c's input at the bounds.
func (l *eventLoop) noteMailbox(c *Conn) {
	d := c.d()
	depth := len(d.mailbox) - int(d.mhead)
	if depth > l.mailboxWindow {
		l.mailboxWindow = depth
		l.wantTicks() // to publish and reset the gauge
	}
	held := int(d.mbytes)
	if c.gp != nil {
		held += c.gc().InboundBuffered()
	}
	if held > l.inboundWindow {
		l.inboundWindow = held
		l.wantTicks()
	}
	o := &l.srv.cfg.Config
	if !c.flags.has(fInPaused) && (depth >= o.MailboxMessages || int(d.mbytes) >= o.MailboxBytes) {
		c.flags.set(fInPaused) // readFrames stops at the next frame
		c.mflags |= mPaused
	}
}

// lowWater reports whether c's mailbox is down to half of both bounds, so
// that its input may resume; c.mu held.
func (s *Server) lowWater(c *Conn) bool {
	d := c.data.Load()
	if d == nil {
		return true
	}
	depth := len(d.mailbox) - int(d.mhead)
	return depth <= s.cfg.MailboxMessages/2 && int(d.mbytes) <= s.cfg.MailboxBytes/2
}

// readPauser is what the gnet patch adds to gnet.Conn.
type readPauser interface {
	PauseRead() error
	ResumeRead() error
	ReadPaused() bool
}

// readsPaused reports whether c's read interest is out of the poller.
func readsPaused(c *Conn) bool {
	p, ok := c.gc().(readPauser)
	return ok && p.ReadPaused()
}

// pauseReads takes c's read interest out of the poller, on the loop. It
// reports false if the poller refused (the input then keeps arriving, up to
// Config.MaxInbound).
func (l *eventLoop) pauseReads(c *Conn) bool {
	p, ok := c.gc().(readPauser)
	if !ok || l.srv.noPause {
		return false
	}
	if p.ReadPaused() {
		return true
	}
	if err := p.PauseRead(); err != nil {
		if !l.pauseFailed {
			l.pauseFailed = true
			l.srv.log.Warn("wsgate: cannot pause reading; input is bounded by max_inbound instead", "err", err)
		}
		return false
	}
	if e := c.x(); e.pausedAt == 0 {
		e.pausedAt = max(l.srv.now(), 1)
		l.stats.pauses.Add(1)
		l.stats.pausedConns.Add(1)
	}
	return true
}

// readsOn gives c its read interest back and counts the time it was
// paused, on the loop.
func (l *eventLoop) readsOn(c *Conn) {
	if p, ok := c.gc().(readPauser); ok && p.ReadPaused() {
		_ = p.ResumeRead() // fails only if the connection is gone
	}
	if e := c.ext.Load(); e != nil && e.pausedAt != 0 {
		l.stats.pausedNanos.Add(max(l.srv.now()-e.pausedAt, 0))
		l.stats.pausedConns.Add(-1)
		e.pausedAt = 0
		// The peer could not be heard while paused: its silence proves
		// nothing (timers.go).
		c.heard(l.srv.now())
	}
}

// resumeIn lets c's input flow again, on the loop: from a worker's
// cmdResume, or when a close starts on a paused connection. The bytes gnet
// kept are parsed at the end of the current inbox run (resumeParse), and the
// socket is read again once they are.
func (l *eventLoop) resumeIn(c *Conn) {
	c.mu.Lock()
	c.mflags &^= mPaused | mResumeAsked
	c.mu.Unlock()
	c.flags.clear(fInPaused)
	if c.gp == nil {
		return
	}
	if c.gc().InboundBuffered() > 0 && (c.state == stateOpen || c.state == stateClosing) && !c.flags.has(fDiscard) {
		l.reparse = append(l.reparse, c)
		return
	}
	l.readsOn(c)
}

// resumeParse parses what resumed connections left in gnet's buffer. It
// runs at the end of runInbox, outside any read path of those connections.
func (l *eventLoop) resumeParse() {
	for i := 0; i < len(l.reparse); i++ {
		c := l.reparse[i]
		l.reparse[i] = nil
		if c.gp == nil || c.flags.has(fInPaused) {
			continue // gone, or paused again meanwhile
		}
		l.finish(c, l.traffic(c))
		if c.gp != nil && !c.flags.has(fInPaused) {
			l.readsOn(c)
		}
	}
	l.reparse = l.reparse[:0]
}

// checkHeld applies Config.MaxInbound to a paused connection whose input
// kept arriving, on the loop. It reports whether c was closed.
func (l *eventLoop) checkHeld(c *Conn) (gnet.Action, bool) {
	unparsed := c.gc().InboundBuffered()
	held := unparsed
	c.mu.Lock()
	if d := c.data.Load(); d != nil {
		held += int(d.mbytes)
	}
	c.mu.Unlock()
	if held <= l.srv.cfg.MaxInbound {
		return gnet.None, false
	}
	l.stats.droppedIn.Add(1)
	l.stats.droppedInBytes.Add(int64(unparsed))
	l.srv.log.Warn("wsgate: inbound bound exceeded; closing with 1008", "conn", c.id, "held", held)
	return l.failStreamNow(c, errInboundLimit), true
}

// errInboundLimit closes a connection over Config.MaxInbound.
var errInboundLimit = &codec.CloseError{Code: ws.StatusPolicyViolation, Reason: "inbound limit exceeded"}
