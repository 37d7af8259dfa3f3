package loop

import (
	"errors"
	"strings"
)

// Sessions across a cluster (docs/resume.md §5, docs/cluster.md): a
// token names the node that made it (SetSessionPrefix), so a node that is
// presented a token of another asks that node for the session; the owner
// gives its state (SnapshotSession), then, once this node is ready to
// take what arrives for it, the frames buffered since and forgets it
// (ReleaseSession: session_move.go), and this node imports it
// (PendingUpgrade.ImportSession) before the 101. The handler of the new
// node gets OnOpen for the imported session, the old node's handler
// OnClose with SessionMovedReason; neither is a new logical session, and
// the gateway's backend bridge posts no hook for them.

// SessionMovedReason is the close reason an old node's handler gets for a
// session another node took over.
const SessionMovedReason = "session moved to another node"

// Errors of SnapshotSession and ReleaseSession.
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
	// Floor: by origin, the highest message number the old node had
	// handed to its connections when it let the session go; what arrives
	// here numbered at or under it is in Frames already (session_move.go).
	Floor map[uint64]uint64 `json:"-"`
	// Attach, if set, is called once, on the loop: with register when the
	// session is in place here (its topics subscribed), for the importer
	// to call, with no message of its own numbering in flight, with the
	// messages it held for the session meanwhile (register puts the
	// anchor in the user index and appends them); with nil when the
	// import failed or its connection went before the 101.
	Attach func(register func(held []HeldMessage)) `json:"-"`
}

// SetSessionPrefix sets what every session token starts with: the node's
// name and '-' in a cluster. Before Start.
func (s *Server) SetSessionPrefix(p string) { s.sessionPrefix = p }

// tokenLen is the length of a token's random part (newToken).
const tokenLen = 22

// SessionNode returns the node to ask for the session the request
// presents, or "" when it is here or nobody is to be asked: the node the
// session moved to from here, else the node its token names, when that is
// another.
func (p *PendingUpgrade) SessionNode() string {
	c := p.c
	s := c.loop.srv
	e := c.ext.Load()
	if e == nil || e.offer == nil || !e.offer.resume || e.offer.invalid || s.cfg.ResumeWindow <= 0 || s.sessionPrefix == "" {
		return ""
	}
	t := e.offer.token
	if ss, _ := s.sessions.get(t); ss != nil {
		return "" // here: it moved here earlier, or never left
	}
	if node := s.sessions.movedTo(t); node != "" {
		return node
	}
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

// importSession makes c the anchor of a session another node handed
// over, resumed from the client's seq, on c's loop before the 101.
func (l *eventLoop) importSession(c *Conn, imp *SessionImport, seq int64) (helloInfo, bool, int) {
	s := l.srv
	fail := -1
	switch {
	case seq > imp.Seq:
		fail = missedInvalid
	case seq+1 < imp.First:
		fail = missedInvalid
		if imp.Trimmed > seq {
			fail = missedOverflow
		}
	}
	if fail >= 0 {
		if imp.Attach != nil {
			imp.Attach(nil)
			imp.Attach = nil
		}
		return helloInfo{}, false, fail
	}
	ss := &session{token: imp.Token, anchor: c, conn: c, seq: imp.Seq, in: imp.In, first: imp.First, trimmed: imp.Trimmed,
		floor: imp.Floor, attach: imp.Attach}
	imp.Attach = nil // the session's now
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
