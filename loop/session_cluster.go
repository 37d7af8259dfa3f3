package loop

import (
	"context"
	"errors"
	"strings"

	"github.com/gobwas/ws"
)

// Sessions across a cluster (docs/resume.md §5, docs/cluster.md): a
// token names the node that made it (SetSessionPrefix), so a node that is
// presented a token of another asks that node for the session; the owner
// hands it over (TakeSession) and forgets it, and this node imports it
// (PendingUpgrade.ImportSession) before the 101. The handler of the new
// node gets OnOpen for the imported session, the old node's handler
// OnClose with SessionMovedReason; neither is a new logical session, and
// the gateway's backend bridge posts no hook for them.

// SessionMovedReason is the close reason an old node's handler gets for a
// session another node took over.
const SessionMovedReason = "session moved to another node"

// Errors of TakeSession.
var (
	ErrNoSession   = errors.New("loop: no such session")
	ErrSessionUser = errors.New("loop: the session belongs to another user")
)

// SessionFrame is one buffered server → client DATA message.
type SessionFrame struct {
	Op   OpCode `json:"op"`
	Data []byte `json:"data"`
}

// SessionImport is the state of a session handed from one node to
// another: what a resume needs. Value is the anchor's Conn.Value, for the
// caller to carry as it can (the gateway carries its backend meta).
type SessionImport struct {
	Token   string         `json:"token"`
	User    string         `json:"user,omitempty"`
	Seq     int64          `json:"seq"`
	In      int64          `json:"in"`
	First   int64          `json:"first"` // number of Frames[0]
	Trimmed int64          `json:"trimmed,omitempty"`
	Topics  []string       `json:"topics,omitempty"`
	Frames  []SessionFrame `json:"frames,omitempty"`
	Value   any            `json:"-"`
}

// SetSessionPrefix sets what every session token starts with: the node's
// name and '-' in a cluster. Before Start.
func (s *Server) SetSessionPrefix(p string) { s.sessionPrefix = p }

// tokenLen is the length of a token's random part (newToken).
const tokenLen = 22

// SessionNode returns the node prefix of the session token the request
// presents, when it is not this node's, or "".
func (p *PendingUpgrade) SessionNode() string {
	c := p.c
	s := c.loop.srv
	e := c.ext.Load()
	if e == nil || e.offer == nil || !e.offer.resume || e.offer.invalid || s.cfg.ResumeWindow <= 0 || s.sessionPrefix == "" {
		return ""
	}
	t := e.offer.token
	if strings.HasPrefix(t, s.sessionPrefix) || len(t) < tokenLen+2 || t[len(t)-tokenLen-1] != '-' {
		return ""
	}
	return t[:len(t)-tokenLen-1]
}

// RemoteSession reports whether the request presents a session token of
// another node (see PendingUpgrade.SessionNode), on the loop.
func (r *Request) RemoteSession() bool {
	p := PendingUpgrade{c: r.c}
	return p.SessionNode() != ""
}

// SessionToken returns the session token the request presents, or "".
func (p *PendingUpgrade) SessionToken() string {
	if e := p.c.ext.Load(); e != nil && e.offer != nil {
		return e.offer.token
	}
	return ""
}

// ImportSession gives the upgrade the session another node handed over;
// gone says the node that held it did not answer. Call it before Accept.
func (p *PendingUpgrade) ImportSession(imp *SessionImport, gone bool) {
	if e := p.c.ext.Load(); e != nil && e.offer != nil {
		e.offer.imported, e.offer.gone = imp, gone
	}
}

// TakeSession hands the session of token over to another node: it is
// forgotten here (its live connection, if any, is closed with 1008, its
// handler gets OnClose with SessionMovedReason) and its state returned.
// It waits for the session's loop, at most until ctx ends.
func (s *Server) TakeSession(ctx context.Context, token, user string) (*SessionImport, error) {
	ss := s.sessions.take(token)
	if ss == nil {
		return nil, ErrNoSession
	}
	a := ss.anchor
	type result struct {
		imp *SessionImport
		err error
	}
	done := make(chan result, 1)
	if !a.loop.enqueue(command{kind: cmdFunc, fn: func() {
		imp, err := a.loop.handOver(ss, user)
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

// handOver ends ss here for another node, on its anchor's loop.
func (l *eventLoop) handOver(ss *session, user string) (*SessionImport, error) {
	a := ss.anchor
	reg := &l.srv.sessions
	ss.mu.Lock()
	if ss.status == sessEnded {
		ss.mu.Unlock()
		return nil, ErrNoSession
	}
	if a.User() != user {
		ss.mu.Unlock()
		reg.add(ss) // not theirs: it stays
		return nil, ErrSessionUser
	}
	imp := &SessionImport{Token: ss.token, User: a.User(), Seq: ss.seq, In: ss.in, First: ss.first, Trimmed: ss.trimmed,
		Frames: make([]SessionFrame, 0, len(ss.frames))}
	for _, f := range ss.frames {
		b := f.buf.b
		hl := frameHeaderLen(b)
		imp.Frames = append(imp.Frames, SessionFrame{Op: OpCode(b[0] & 0x0f), Data: append([]byte(nil), b[hl+1:]...)})
	}
	old := ss.conn
	suspended := ss.status == sessSuspended
	ss.status, ss.conn, ss.moved = sessEnded, nil, true
	l.releaseLocked(ss)
	closed := a.state == stateClosed
	if closed {
		ss.final = true
	}
	ss.mu.Unlock()
	if suspended {
		reg.stats.suspended.Add(-1)
	}
	reg.stats.moved.Add(1)
	imp.Topics = a.topicNames()
	imp.Value = a.Value()
	if old != nil {
		old.loop.enqueue(command{kind: cmdClose, c: old, code: ws.StatusPolicyViolation,
			reason: takenOverReason, cause: causeApp})
	}
	if closed {
		l.finalize(a, ws.StatusGoingAway, SessionMovedReason)
	}
	return imp, nil
}

// importSession makes c the anchor of a session another node handed
// over, resumed from the client's seq, on c's loop before the 101.
func (l *eventLoop) importSession(c *Conn, imp *SessionImport, seq int64) (helloInfo, bool, int) {
	s := l.srv
	switch {
	case seq > imp.Seq:
		return helloInfo{}, false, missedInvalid
	case seq+1 < imp.First:
		if imp.Trimmed > seq {
			return helloInfo{}, false, missedOverflow
		}
		return helloInfo{}, false, missedInvalid
	}
	ss := &session{token: imp.Token, anchor: c, conn: c, seq: imp.Seq, in: imp.In, first: imp.First, trimmed: imp.Trimmed}
	ss.mu.Lock()
	for _, f := range imp.Frames {
		e := s.newEnvFrame(f.Op, f.Data)
		ss.frames = append(ss.frames, e)
		n := envPayloadLen(e)
		ss.bytes += n
		s.sessions.stats.buffered.Add(n)
	}
	l.ackLocked(ss, seq)
	ss.sent = seq
	ss.mu.Unlock()
	e := c.x()
	e.sess = ss
	if imp.Value != nil {
		e.value.Store(valueBox{imp.Value})
	}
	for _, name := range imp.Topics {
		if name != "" {
			l.subscribe(c, s.topics.acquire(name, l.idx))
		}
	}
	s.sessions.add(ss)
	s.sessions.stats.resumes.Add(1)
	s.sessions.stats.replayed.Add(imp.Seq - seq)
	s.notifyResume(c) // after its OnOpen
	return helloInfo{status: "resumed", seq: seq, in: imp.In, replay: imp.Seq - seq}, true, 0
}
