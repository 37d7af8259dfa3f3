package loop

import (
	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// The life of a session (docs/resume.md §3.3, §5): suspend when its
// transport is lost, resume or take over at a new handshake, end once.

// takenOverReason closes a connection whose session another one resumed.
const takenOverReason = "session taken over"

// expiredReason is the close reason the handler's OnClose gets for a
// session whose window passed.
const expiredReason = "resume window expired"

// suspends reports whether the way c ended keeps its session for a
// resume: transport loss, a pong timeout, a client close other than 1000,
// a server 1001 (drain, lifetime, shutdown). Everything else ends it.
func suspends(c *Conn) bool {
	switch {
	case c.cause == causePeer:
		return c.closeCode != ws.StatusNormalClosure
	case c.closeCode == 0:
		return true
	case c.closeCode == ws.StatusGoingAway:
		return true
	}
	return false
}

// resume attaches ss to c, which presented its token and last sequence
// number seq, on c's loop before the 101. It reports why not when it
// cannot.
func (l *eventLoop) resume(c *Conn, ss *session, seq int64) (h helloInfo, ok bool, why int) {
	reg := &l.srv.sessions
	ss.mu.Lock()
	if ss.status == sessEnded || ss.frozen {
		ss.mu.Unlock()
		return h, false, missedUnknown // or leaving for another node
	}
	if ss.anchor.User() != c.User() {
		ss.mu.Unlock()
		return h, false, missedUser
	}
	suspended := ss.status == sessSuspended
	fail := -1
	switch {
	case suspended && l.srv.now() >= ss.expireAt:
		fail = missedExpired
	case seq > ss.seq:
		fail = missedInvalid
	case seq+1 < ss.first:
		fail = missedInvalid // it acknowledged more than that
		if ss.trimmed > seq {
			fail = missedOverflow
		}
	}
	if fail >= 0 {
		if !suspended {
			// Attached to a live connection: that one keeps it.
			ss.mu.Unlock()
			return h, false, fail
		}
		ss.status = sessEnded
		l.releaseLocked(ss)
		ss.mu.Unlock()
		reg.forget(ss, fail == missedExpired)
		reg.stats.suspended.Add(-1)
		if fail == missedExpired {
			reg.stats.expiries.Add(1)
		}
		l.finalizeOn(ss, ws.StatusAbnormalClosure, expiredReason)
		return h, false, fail
	}
	old := ss.conn
	l.ackLocked(ss, seq)
	ss.conn, ss.sent, ss.status, ss.flushQ = c, seq, sessAttached, false
	h = helloInfo{status: "resumed", seq: seq, in: ss.in, replay: ss.seq - seq}
	ss.mu.Unlock()
	if old != nil {
		// The server had not noticed the drop: the old connection goes,
		// the session stays (§5.1 step 3).
		reg.stats.takeovers.Add(1)
		old.loop.enqueue(command{kind: cmdClose, c: old, code: ws.StatusPolicyViolation,
			reason: takenOverReason, cause: causeApp})
	}
	if suspended {
		reg.stats.suspended.Add(-1)
	}
	reg.stats.resumes.Add(1)
	reg.stats.replayed.Add(h.replay)
	l.srv.notifyResume(ss.anchor)
	e := c.x()
	e.sess = ss
	e.user = "" // a transport: the anchor is in the user index
	return h, true, 0
}

// sessionLost runs from closed for connection c, in state prev before,
// after its timer is disarmed. It reports true when c is a session's
// anchor that must stay (in its loop's table, its topics and the user
// index, its handler not told) because the session lives on.
func (l *eventLoop) sessionLost(c *Conn, prev uint8) bool {
	ss := c.session()
	if ss == nil {
		return false
	}
	reg := &l.srv.sessions
	anchor := ss.anchor == c
	ss.mu.Lock()
	if anchor && prev < stateOpen {
		// Its 101 did not go out: the handler never heard of it.
		ss.status, ss.final, ss.conn = sessEnded, true, nil
		l.releaseLocked(ss)
		attach := ss.attach
		ss.attach = nil
		ss.mu.Unlock()
		reg.forget(ss, false)
		if attach != nil {
			attach(nil) // an import that did not make it
		}
		return false
	}
	if ss.conn != c {
		// Taken over, or the session moved on earlier.
		keep := anchor
		if anchor && ss.status == sessEnded {
			keep = false // ended meanwhile: c's own close tells the handler
			ss.final = true
			if ss.moved {
				c.closeCode = ws.StatusGoingAway
				c.x().closeReason = SessionMovedReason
			}
		}
		at, armed := ss.expireAt, ss.status == sessSuspended
		ss.mu.Unlock()
		if keep && armed {
			l.schedule(c, at)
		}
		return keep
	}
	ss.conn = nil
	if l.srv.cfg.ResumeWindow <= 0 || ss.token == "" || ss.ending || !suspends(c) {
		ss.status = sessEnded
		if anchor {
			ss.final = true
		}
		l.releaseLocked(ss)
		ss.mu.Unlock()
		reg.forget(ss, false)
		if !anchor {
			l.finalizeOn(ss, closeCodeOf(c), closeReasonOf(c))
		}
		return false
	}
	ss.status = sessSuspended
	ss.expireAt = l.srv.now() + int64(l.srv.cfg.ResumeWindow)
	at := ss.expireAt
	ss.mu.Unlock()
	reg.stats.suspends.Add(1)
	reg.stats.suspended.Add(1)
	if anchor {
		l.schedule(c, at)
	} else {
		a := ss.anchor
		a.loop.enqueue(command{kind: cmdFunc, fn: func() { a.loop.armSession(a) }})
	}
	return anchor
}

// armSession schedules the expiry of anchor a's suspended session on its
// loop, once a's own connection is gone (until then its node is busy
// with its deadlines, and sessionLost arms it when it goes).
func (l *eventLoop) armSession(a *Conn) {
	ss := a.session()
	ss.mu.Lock()
	at, ok := ss.expireAt, ss.status == sessSuspended && !ss.final
	ss.mu.Unlock()
	if ok && a.state == stateClosed {
		l.schedule(a, at)
	}
}

// sessionFire runs when the node of a kept anchor fires: its session's
// window may have passed.
func (l *eventLoop) sessionFire(a *Conn, now int64) {
	ss := a.session()
	if ss == nil {
		return
	}
	ss.mu.Lock()
	if ss.status != sessSuspended || ss.final {
		ss.mu.Unlock()
		return
	}
	if now < ss.expireAt {
		at := ss.expireAt
		ss.mu.Unlock()
		l.schedule(a, at)
		return
	}
	ss.status, ss.final = sessEnded, true
	l.releaseLocked(ss)
	ss.mu.Unlock()
	reg := &l.srv.sessions
	reg.forget(ss, true)
	reg.stats.expiries.Add(1)
	reg.stats.suspended.Add(-1)
	l.finalize(a, ws.StatusAbnormalClosure, expiredReason)
}

// finalizeOn ends ss's anchor on its loop: what closed left undone for a
// kept anchor, and its handler's OnClose.
func (l *eventLoop) finalizeOn(ss *session, code StatusCode, reason string) {
	a := ss.anchor
	al := a.loop
	fn := func() {
		ss.mu.Lock()
		if ss.final || a.state != stateClosed {
			// Its connection is still open: its close will tell the
			// handler (sessionLost).
			ss.mu.Unlock()
			return
		}
		ss.final = true
		ss.mu.Unlock()
		al.finalize(a, code, reason)
	}
	if al == l {
		fn()
		return
	}
	al.enqueue(command{kind: cmdFunc, fn: fn})
}

// finalize does for a kept anchor what closed skipped, on its loop.
func (l *eventLoop) finalize(a *Conn, code StatusCode, reason string) {
	l.remove(a)
	l.disarm(a)
	if e := a.ext.Load(); e != nil && len(e.subs) > 0 {
		l.unsubscribe(a, "")
	}
	if a.User() != "" {
		l.srv.users.del(a)
	}
	l.deliver(a, event{kind: evClose, err: &codec.CloseError{Code: code, Reason: reason}})
}

// closeCodeOf and closeReasonOf say how c ended, as closed tells a handler.
func closeCodeOf(c *Conn) StatusCode {
	code := c.closeCode
	if code == 0 || code == ws.StatusNoStatusRcvd && c.cause != causePeer {
		code = ws.StatusAbnormalClosure
	}
	return code
}

func closeReasonOf(c *Conn) string {
	if e := c.ext.Load(); e != nil {
		return e.closeReason
	}
	return ""
}

// closeSession is Conn.Close for a session: it ends the session, closing
// its transport, or at once if it is suspended.
func (ss *session) close(code StatusCode, reason string) error {
	ss.mu.Lock()
	if ss.status == sessEnded || ss.ending {
		ss.mu.Unlock()
		return ErrClosed
	}
	ss.ending = true
	conn := ss.conn
	if conn != nil {
		ss.mu.Unlock()
		if !conn.loop.enqueue(command{kind: cmdClose, c: conn, code: code, reason: reason, cause: causeApp}) {
			return ErrServerClosed
		}
		return nil
	}
	a := ss.anchor
	ss.status = sessEnded
	a.loop.releaseLocked(ss)
	ss.mu.Unlock()
	reg := &a.loop.srv.sessions
	reg.forget(ss, false)
	reg.stats.suspended.Add(-1)
	// Not from a's loop (any goroutine): through its inbox.
	a.loop.enqueue(command{kind: cmdFunc, fn: func() { a.loop.finalizeOn(ss, code, reason) }})
	return nil
}

// endSessions ends every suspended session, for Shutdown: their handlers
// get OnClose (1001) before the server stops.
func (s *Server) endSessions() {
	reg := &s.sessions
	reg.mu.Lock()
	list := make([]*session, 0, len(reg.byToken))
	for _, ss := range reg.byToken {
		list = append(list, ss)
	}
	reg.mu.Unlock()
	for _, ss := range list {
		ss.mu.Lock()
		if ss.status != sessSuspended {
			ss.mu.Unlock()
			continue
		}
		ss.status = sessEnded
		ss.anchor.loop.releaseLocked(ss)
		ss.mu.Unlock()
		reg.forget(ss, false)
		reg.stats.suspended.Add(-1)
		a := ss.anchor
		a.loop.enqueue(command{kind: cmdFunc, fn: func() { a.loop.finalizeOn(ss, ws.StatusGoingAway, "server shutting down") }})
	}
}

// keptAnchor reports whether c, whose TCP connection is gone, anchors a
// session that lives on: it still takes subscriptions (session.go).
func keptAnchor(c *Conn) bool {
	ss := c.session()
	if ss == nil || ss.anchor != c {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.status != sessEnded
}
