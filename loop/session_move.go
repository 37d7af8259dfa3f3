package loop

import (
	"context"
	"errors"

	"github.com/gobwas/ws"
)

// A session that moves from one node (A) to another (B) loses nothing
// and gets nothing twice (docs/cluster.md, "Sessions that move"). The
// cluster numbers every message it carries to users, topics or everyone
// (MsgID: origin node and that node's count; the gateway passes it to
// PublishID, BroadcastID and Conn.SendID), and the move has two steps:
//
//  1. SnapshotSession on A: B gets the session's state (frames, topics,
//     user); A keeps it, suspended, buffering what arrives for it.
//  2. B now holds what arrives for the session here (the gateway does,
//     numbered) and subscribes to its user and topics; once NATS has
//     those subscriptions, ReleaseSession on A: Send to the session is
//     refused from then on (A's gateway calls it while no numbered
//     message is on its way to a connection), its loop hands over the
//     frames buffered since the snapshot and forgets the session, and
//     the gateway sends them with the Floor: by origin, the highest
//     number A had handed to its connections. Every message for the
//     session at or under the floor is in A's frames; every one above it
//     reached B after B subscribed, so B holds it.
//
// B imports the session with A's frames and the floor, and at the 101
// (Attach) appends what it held above the floor; the floor, raised to the
// held messages' numbers, stays with the session, so a copy that reaches
// it later (a publish already queued for its loop, or late out of NATS)
// is skipped: sendSession and deliverSession check it.

// MsgID is the cluster's number of a message (cluster.MsgID): the zero
// MsgID numbers nothing and is never skipped.
type MsgID struct{ Origin, Seq uint64 }

// HeldMessage is a message that arrived for a session on its way to this
// node (SessionImport.Attach).
type HeldMessage struct {
	ID   MsgID
	Op   OpCode
	Data []byte
}

// Errors of ReleaseSession.
var (
	// ErrSessionGap: the frames after the snapshot are no longer all
	// buffered (the session overflowed meanwhile).
	ErrSessionGap = errors.New("loop: the session's buffer no longer holds every frame since the snapshot")
	// ErrSessionBusy: a client resumed the session here meanwhile.
	ErrSessionBusy = errors.New("loop: the session was resumed here meanwhile")
)

// SessionMovedError is SnapshotSession's error for a session this node
// released to another: Node names it.
type SessionMovedError struct{ Node string }

func (e *SessionMovedError) Error() string { return "loop: the session moved to node " + e.Node }

// movedTo returns the node the session of token moved to from here, or "".
func (r *sessionRegistry) movedTo(token string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.moved[token]
}

// forward remembers that the session of token moved to node.
func (r *sessionRegistry) forward(token, node string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.moved == nil || len(r.moved) >= maxExpiredTokens {
		r.moved = make(map[string]string)
	}
	r.moved[token] = node
}

// hasLocked reports whether ss, which came from another node, has the
// message numbered id. Under ss.mu.
func (ss *session) hasLocked(id MsgID) bool {
	if ss.floor == nil || id.Origin == 0 {
		return false
	}
	f, ok := ss.floor[id.Origin]
	return ok && id.Seq <= f
}

// SnapshotSession returns the state of the session of token for another
// node that is taking it over (step 1 above). The session stays here: its
// live connection, if any, is closed with 1008 and it is suspended. It
// waits for the session's loop, at most until ctx ends.
func (s *Server) SnapshotSession(ctx context.Context, token, user string) (*SessionImport, error) {
	ss, _ := s.sessions.get(token)
	if ss == nil {
		if node := s.sessions.movedTo(token); node != "" {
			return nil, &SessionMovedError{Node: node}
		}
		return nil, ErrNoSession
	}
	type result struct {
		imp *SessionImport
		err error
	}
	done := make(chan result, 1)
	a := ss.anchor
	if !a.loop.enqueue(command{kind: cmdFunc, fn: func() {
		imp, err := a.loop.snapshotSession(ss, user)
		done <- result{imp, err}
	}}) {
		return nil, ErrServerClosed
	}
	select {
	case r := <-done:
		return r.imp, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// snapshotSession runs on ss's anchor's loop.
func (l *eventLoop) snapshotSession(ss *session, user string) (*SessionImport, error) {
	a := ss.anchor
	reg := &l.srv.sessions
	ss.mu.Lock()
	if ss.status == sessEnded || ss.frozen {
		ss.mu.Unlock()
		return nil, ErrNoSession
	}
	if a.User() != user {
		ss.mu.Unlock()
		return nil, ErrSessionUser
	}
	imp := &SessionImport{Token: ss.token, User: a.User(), Seq: ss.seq, In: ss.in, First: ss.first, Trimmed: ss.trimmed,
		Frames: make([]SessionFrame, 0, len(ss.frames))}
	for _, f := range ss.frames {
		imp.Frames = append(imp.Frames, sessionFrameOf(f))
	}
	old := ss.conn
	if old != nil {
		// Attached (the drop was not noticed here): the connection goes,
		// the session waits, suspended, for its release (§5.1 step 3).
		ss.conn, ss.status, ss.flushQ = nil, sessSuspended, false
		ss.expireAt = l.srv.now() + int64(l.srv.cfg.ResumeWindow)
	}
	ss.mu.Unlock()
	imp.Topics = a.topicNames()
	imp.Value = a.Value()
	if old != nil {
		reg.stats.suspends.Add(1)
		reg.stats.suspended.Add(1)
		reg.stats.takeovers.Add(1)
		old.loop.enqueue(command{kind: cmdClose, c: old, code: ws.StatusPolicyViolation,
			reason: takenOverReason, cause: causeApp})
		if old != a {
			l.armSession(a) // a's own connection is gone: its node is free
		}
	}
	return imp, nil
}

// sessionFrameOf copies the application payload of a buffered frame.
func sessionFrameOf(f *sharedFrame) SessionFrame {
	b := f.buf.b
	hl := frameHeaderLen(b)
	return SessionFrame{Op: OpCode(b[0] & 0x0f), Data: append([]byte(nil), b[hl+1:]...)}
}

// ReleaseSession lets the session of token go to node `to` (step 2
// above): from the call on, Send to it returns ErrClosed; its loop then
// returns the frames numbered after `after` (the snapshot's Seq) and
// forgets it (its handler gets OnClose with SessionMovedReason), keeping
// only where it went, for a resume presented here later (SessionNode). The
// caller calls it while no message it numbers can reach a connection
// here, and the returned wait after, for the frames.
func (s *Server) ReleaseSession(token, user, to string, after int64) (wait func(ctx context.Context) ([]SessionFrame, error), err error) {
	ss, _ := s.sessions.get(token)
	if ss == nil {
		return nil, ErrNoSession
	}
	a := ss.anchor
	ss.mu.Lock()
	switch {
	case ss.status == sessEnded || ss.frozen:
		err = ErrNoSession
	case a.User() != user:
		err = ErrSessionUser
	case ss.status == sessAttached:
		err = ErrSessionBusy
	}
	if err == nil {
		ss.frozen = true
	}
	ss.mu.Unlock()
	if err != nil {
		return nil, err
	}
	type result struct {
		frames []SessionFrame
		err    error
	}
	done := make(chan result, 1)
	if !a.loop.enqueue(command{kind: cmdFunc, fn: func() {
		f, err := a.loop.releaseSession(ss, after)
		if err == nil && to != "" {
			s.sessions.forward(token, to)
		}
		done <- result{f, err}
	}}) {
		return nil, ErrServerClosed
	}
	return func(ctx context.Context) ([]SessionFrame, error) {
		select {
		case r := <-done:
			return r.frames, r.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}, nil
}

// releaseSession ends frozen ss here for another node, on its anchor's
// loop: every publish queued for the loop before the release has reached
// it.
func (l *eventLoop) releaseSession(ss *session, after int64) ([]SessionFrame, error) {
	a := ss.anchor
	reg := &l.srv.sessions
	ss.mu.Lock()
	var err error
	switch {
	case ss.status == sessEnded:
		err = ErrNoSession
	case ss.status == sessAttached:
		err = ErrSessionBusy
	case after > ss.seq || after+1 < ss.first:
		err = ErrSessionGap
	}
	if err != nil {
		ss.frozen = false // it stays here, as it was
		ss.mu.Unlock()
		return nil, err
	}
	frames := make([]SessionFrame, 0, ss.seq-after)
	for i, f := range ss.frames {
		if ss.first+int64(i) > after {
			frames = append(frames, sessionFrameOf(f))
		}
	}
	ss.status, ss.moved = sessEnded, true
	l.releaseLocked(ss)
	closed := a.state == stateClosed
	if closed {
		ss.final = true
	}
	ss.mu.Unlock()
	reg.forget(ss, false)
	reg.stats.suspended.Add(-1)
	reg.stats.moved.Add(1)
	if closed {
		l.finalize(a, ws.StatusGoingAway, SessionMovedReason)
	}
	return frames, nil
}

// attachMoved runs at the 101 of a connection that imported a session
// (upgrade): the importer's hook puts the anchor in the user index and
// appends what it held, while no numbered message can reach the session.
func (l *eventLoop) attachMoved(c *Conn, ss *session) {
	s := l.srv
	attach := ss.attach
	ss.attach = nil
	attach(func(held []HeldMessage) {
		if c.User() != "" {
			s.users.add(c)
		}
		ss.mu.Lock()
		defer ss.mu.Unlock()
		for _, m := range held {
			if ss.hasLocked(m.ID) {
				continue // the old node had it: in the frames already
			}
			e := s.newEnvFrame(m.Op, m.Data)
			e.id = m.ID
			s.appendLocked(ss, e)
			if m.ID.Origin != 0 {
				if ss.floor == nil {
					ss.floor = make(map[uint64]uint64)
				}
				ss.floor[m.ID.Origin] = max(ss.floor[m.ID.Origin], m.ID.Seq)
			}
		}
	})
}
