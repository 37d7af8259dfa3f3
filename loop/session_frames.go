package loop

import (
	"bytes"
	"strconv"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/codec"
)

// The envelope's framing (docs/resume.md §2, §7): every message of an
// envelope connection starts with a type byte; DATA ('D') carries the
// application's payload, ACK ('A') trims the session's buffer, HELLO
// ('H') and BEAT ('B') come from the server.

// Envelope type bytes.
const (
	envData  = 'D'
	envHello = 'H'
	envBeat  = 'B'
	envAck   = 'A'
)

// errEnvelope closes a connection that broke the envelope: an empty
// message, an unknown or server-only type, a control message in a binary
// frame, a bad ACK (§2, §7).
var errEnvelope = &codec.CloseError{Code: ws.StatusProtocolError, Reason: "bad envelope message"}

// appendEnvFrame appends a DATA frame: header, 'D', payload.
func appendEnvFrame(dst []byte, op OpCode, p []byte) []byte {
	dst = codec.AppendHeader(dst, ws.Header{Fin: true, OpCode: op, Length: int64(len(p)) + 1})
	dst = append(dst, envData)
	return append(dst, p...)
}

// frameHeaderLen returns the header length of an unmasked server frame.
func frameHeaderLen(f []byte) int {
	switch f[1] & 0x7f {
	case 126:
		return 4
	case 127:
		return 10
	}
	return 2
}

// envPayloadLen returns the application payload bytes of a DATA frame.
func envPayloadLen(f *sharedFrame) int64 {
	return int64(len(f.buf.b) - frameHeaderLen(f.buf.b) - 1)
}

// newEnvFrame encodes a DATA frame in a sharedFrame the caller holds one
// reference to, charged to the memory budget when it has one (always: a
// message already accepted is not refused at this point).
func (s *Server) newEnvFrame(op OpCode, p []byte) *sharedFrame {
	f := sharedFrames.Get().(*sharedFrame)
	f.buf = getBuffer(codec.MaxHeaderSize + 1 + len(p))
	f.buf.b = appendEnvFrame(f.buf.b, op, p)
	f.refs.Store(1)
	if m := s.mem; m != nil {
		m.total.Add(int64(cap(f.buf.b)))
		f.mem = m
	}
	return f
}

// envFrame returns the envelope encoding of a publish's shared frame,
// made once per publish by the first loop that needs it and shared by
// every envelope subscriber; f holds it until f is released.
func (s *Server) envFrame(f *sharedFrame) *sharedFrame {
	if e := f.env.Load(); e != nil {
		return e
	}
	b := f.buf.b
	hl := frameHeaderLen(b)
	e := s.newEnvFrame(OpCode(b[0]&0x0f), b[hl:])
	if !f.env.CompareAndSwap(nil, e) {
		e.release()
		return f.env.Load()
	}
	return e
}

// appendLocked adds frame f (its reference passes to ss) as ss's next
// DATA message, trimming the oldest past Options.ResumeBuffer: only
// frames already written, while a transport is attached, so a connected
// client loses nothing (§7). Under ss.mu.
func (s *Server) appendLocked(ss *session, f *sharedFrame) {
	ss.frames = append(ss.frames, f)
	ss.seq++
	n := envPayloadLen(f)
	ss.bytes += n
	st := &s.sessions.stats
	st.buffered.Add(n)
	limit := int64(s.cfg.ResumeBuffer)
	if ss.token == "" {
		limit = 0 // no resume: keep only what is not written yet
	}
	for len(ss.frames) > 0 && ss.bytes > limit && (ss.conn == nil || ss.first <= ss.sent) {
		if ss.token != "" {
			ss.trimmed = ss.first
			st.overflows.Add(1)
		}
		s.dropFirstLocked(ss)
	}
}

// dropFirstLocked releases ss's oldest buffered frame.
func (s *Server) dropFirstLocked(ss *session) {
	f := ss.frames[0]
	ss.frames[0] = nil
	ss.frames = ss.frames[1:]
	ss.first++
	n := envPayloadLen(f)
	ss.bytes -= n
	s.sessions.stats.buffered.Add(-n)
	f.release()
}

// ackLocked drops the frames up to number n, which the client has.
func (l *eventLoop) ackLocked(ss *session, n int64) {
	for len(ss.frames) > 0 && ss.first <= n {
		l.srv.dropFirstLocked(ss)
	}
}

// releaseLocked drops every frame of an ended session.
func (l *eventLoop) releaseLocked(ss *session) {
	for len(ss.frames) > 0 {
		l.srv.dropFirstLocked(ss)
	}
	ss.frames = nil
}

// kickLocked returns the transport to flush ss to, if a flush is not
// queued already.
func (ss *session) kickLocked() *Conn {
	if ss.conn == nil || ss.sent >= ss.seq || ss.flushQ {
		return nil
	}
	ss.flushQ = true
	return ss.conn
}

// kick flushes ss's transport t: at once if it is l's, else through its
// loop's inbox.
func (l *eventLoop) kick(t *Conn) {
	if t == nil {
		return
	}
	if t.loop == l {
		l.flushSession(t)
		return
	}
	t.loop.enqueue(command{kind: cmdSessionFlush, c: t})
}

// sendSession is Conn.Send for a connection of a session; id is the
// message's cluster number (SendID), zero if none.
func (c *Conn) sendSession(ss *session, id MsgID, op OpCode, data []byte) error {
	s := c.loop.srv
	ss.mu.Lock()
	if ss.status == sessEnded || ss.ending || ss.frozen {
		ss.mu.Unlock()
		return ErrClosed
	}
	if ss.hasLocked(id) {
		ss.mu.Unlock()
		return nil // it came with the session from another node
	}
	ss.mu.Unlock()
	f := sharedFrames.Get().(*sharedFrame)
	f.buf = getBuffer(codec.MaxHeaderSize + 1 + len(data))
	f.buf.b = appendEnvFrame(f.buf.b, op, data)
	if !s.chargeFrame(f) {
		putBuffer(f.buf)
		f.buf = nil
		sharedFrames.Put(f)
		return ErrMemoryBudget
	}
	f.refs.Store(1)
	f.id = id
	ss.mu.Lock()
	if ss.status == sessEnded || ss.frozen {
		ss.mu.Unlock()
		f.release()
		return ErrClosed
	}
	s.appendLocked(ss, f)
	t := ss.kickLocked()
	ss.mu.Unlock()
	if t != nil && !t.loop.enqueue(command{kind: cmdSessionFlush, c: t}) {
		return ErrServerClosed
	}
	return nil
}

// deliverSession takes a publish run for the session anchored on c, on
// c's loop (from deliverShared). A transport that is not the anchor gets
// nothing here: its session hears of the publish through its anchor.
func (l *eventLoop) deliverSession(c *Conn, ss *session, frames [][]byte) {
	if ss.anchor != c {
		return
	}
	s := l.srv
	cmds := l.sess.pub
	ss.mu.Lock()
	if ss.status == sessEnded {
		ss.mu.Unlock()
		return
	}
	n := 0
	for i, fb := range frames {
		var e *sharedFrame
		if len(cmds) == len(frames) && cmds[i].shared != nil {
			if ss.hasLocked(cmds[i].shared.id) {
				continue // it came with the session from another node
			}
			e = s.envFrame(cmds[i].shared)
			e.refs.Add(1)
		} else {
			hl := frameHeaderLen(fb)
			e = s.newEnvFrame(OpCode(fb[0]&0x0f), fb[hl:])
		}
		s.appendLocked(ss, e)
		n++
	}
	l.stats.deliveries.Add(int64(n))
	t := ss.kickLocked()
	ss.mu.Unlock()
	l.kick(t)
}

// sessionLoop is a loop's scratch for sessions.
type sessionLoop struct {
	pub    []command // the publish run being delivered (publishRun)
	frames []*sharedFrame
	iov    [][]byte
}

// flushSession writes what c's session has not written yet to c, on c's
// loop, in the session's order. Frames are written outside the session's
// lock (a failed write closes c, which takes it).
func (l *eventLoop) flushSession(c *Conn) {
	ss := c.session()
	if ss == nil {
		return
	}
	ss.mu.Lock()
	if ss.conn == c {
		ss.flushQ = false
	}
	if ss.conn != c || c.state != stateOpen || ss.sent >= ss.seq {
		ss.mu.Unlock()
		return
	}
	i := max(int(ss.sent+1-ss.first), 0)
	fr := l.sess.frames[:0]
	for _, f := range ss.frames[i:] {
		f.refs.Add(1)
		fr = append(fr, f)
	}
	n := ss.seq - ss.sent
	ss.sent = ss.seq
	ss.mu.Unlock()
	iov := l.sess.iov[:0]
	total := 0
	for _, f := range fr {
		iov = append(iov, f.buf.b)
		total += len(f.buf.b)
	}
	if !l.fits(c, total) {
		// A client that does not read: cut its transport, which
		// suspends the session; its resume replays from what it has,
		// or says what overflowed.
		l.drop(c, causeSlowConsumer)
	} else if w, err := l.writeSession(c, iov); err == nil {
		l.stats.bytesOut.Add(int64(w))
		l.stats.messagesOut.Add(n)
		c.countOut(n, w, l.srv.now())
		l.wrote(c)
	}
	for _, f := range fr {
		f.release()
	}
	clear(fr)
	clear(iov)
	l.sess.frames, l.sess.iov = fr[:0], iov[:0]
}

// writeSession writes a session's frames to c: in one writev, or, where c
// negotiated permessage-deflate, each compressed on its own (outFrame's
// result lives until its next call, and with context takeover each frame
// compressed joins the window only once it is written).
func (l *eventLoop) writeSession(c *Conn, iov [][]byte) (int, error) {
	if !c.deflating() {
		return c.gc().Writev(iov)
	}
	total := 0
	for _, b := range iov {
		w, err := c.gc().Write(l.outFrame(c, b))
		total += w
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// envelopeIn checks and unwraps the message just read on an envelope
// connection, in its data part's msgBuf. It reports whether the message, its type byte
// stripped, goes to the handler; an ACK is taken here.
func (l *eventLoop) envelopeIn(c *Conn, ss *session, op OpCode) (deliver bool, err error) {
	b := c.d().msgBuf
	if b == nil || len(b.b) == 0 {
		return false, errEnvelope
	}
	switch b.b[0] {
	case envData:
		n := copy(b.b, b.b[1:])
		b.b = b.b[:n]
		ss.mu.Lock()
		ss.in++
		ss.mu.Unlock()
		return true, nil
	case envAck:
		if op != OpText {
			return false, errEnvelope
		}
		n, ok := fieldInt(b.b[1:], "seq")
		if !ok {
			return false, errEnvelope
		}
		ss.mu.Lock()
		if n > ss.sent {
			ss.mu.Unlock()
			return false, errEnvelope
		}
		l.ackLocked(ss, n)
		ss.mu.Unlock()
		return false, nil
	}
	return false, errEnvelope
}

// fieldInt returns the first value of name in a control message body
// (name=value pairs joined by '&', §2) as a decimal integer ≤ 2^53-1.
func fieldInt(body []byte, name string) (int64, bool) {
	for len(body) > 0 {
		pair := body
		if i := bytes.IndexByte(body, '&'); i >= 0 {
			pair, body = body[:i], body[i+1:]
		} else {
			body = nil
		}
		if len(pair) <= len(name) || string(pair[:len(name)]) != name || pair[len(name)] != '=' {
			continue
		}
		v := pair[len(name)+1:]
		if len(v) == 0 || len(v) > 16 {
			return 0, false
		}
		var n int64
		for _, d := range v {
			if d < '0' || d > '9' {
				return 0, false
			}
			n = n*10 + int64(d-'0') // ≤ 16 digits: no overflow
		}
		return n, n <= 1<<53-1
	}
	return 0, false
}

// heartbeat returns the frame that checks on c after a quiet
// PingInterval: a ping, or on an envelope connection a BEAT with the
// session's counts (§4), which a browser's page can see.
func (l *eventLoop) heartbeat(c *Conn) []byte {
	ss := c.session()
	if ss == nil {
		return l.srv.pingFrame
	}
	ss.mu.Lock()
	sent, in := ss.sent, ss.in
	ss.mu.Unlock()
	var body [48]byte
	b := append(body[:0], envBeat)
	b = append(b, "seq="...)
	b = strconv.AppendInt(b, sent, 10)
	b = appendField(b, "in", in)
	l.scratch = codec.AppendFrame(l.scratch[:0], OpText, true, b)
	return l.scratch
}
