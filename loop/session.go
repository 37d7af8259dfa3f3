package loop

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"sync/atomic"
)

// Resumable sessions (docs/resume.md). A connection that offered the
// envelope (wsgate.resume.v1) gets a session: a token, the counts of DATA
// messages each way, and a buffer of the DATA frames it was sent and has
// not acknowledged. The session outlives its transport: when the TCP
// connection is lost it is suspended for Options.ResumeWindow, and a new
// connection that presents the token (wsgate.session.TOKEN.SEQ) takes it
// over and is replayed what it missed.
//
// The first connection of a session is its anchor: the logical
// connection the handler sees from OnOpen to OnClose (its ID, user, value,
// topics and its place in the user index stay on it), whatever transport
// carries the session at the moment. Messages read from a later transport
// reach the handler as the anchor's; Send and Close on either reach the
// session. So a resume runs no OnOpen and no OnClose, and a session ends
// with exactly one OnClose, on the anchor.
//
// Every DATA frame for a session goes through its buffer: appended under
// the session's lock (by any goroutine: Send, or the loop delivering a
// publish to the anchor), then written by the loop of the attached
// transport (flushSession), in buffer order. That keeps the numbering
// right however many loops push to one session, and across a takeover.
// Frames are sharedFrames: a publish's envelope encoding is made once and
// shared by every envelope subscriber's buffer.
//
// Timers: a suspended session's expiry is the anchor's own wheel node,
// free once the anchor's TCP connection is gone. Nothing here starts a
// timer or a goroutine per session.

// ResumeHandler is an optional interface of a Handler: OnResume runs on
// the worker pool, in order with the session's other events, each time a
// new connection resumes the session c anchors (on this node, or on this
// node after another handed it over, right after OnOpen). The client gets
// its replay meanwhile; OnResume is a notification, not a decision.
type ResumeHandler interface {
	OnResume(c *Conn)
}

// notifyResume queues OnResume for anchor a, on its loop's inbox, so that
// it follows an OnOpen the same pass delivers.
func (s *Server) notifyResume(a *Conn) {
	if _, ok := s.handler.(ResumeHandler); ok {
		a.loop.enqueue(command{kind: cmdFunc, fn: func() { a.loop.deliver(a, event{kind: evResume}) }})
	}
}

// sessStatus is a session's life stage.
type sessStatus uint8

const (
	sessAttached  sessStatus = iota // a transport carries it
	sessSuspended                   // its transport is gone; it waits for a resume
	sessEnded                       // over: the anchor's OnClose follows
)

// session is one resumable session. token and anchor never change; the
// rest is guarded by mu.
type session struct {
	token  string // empty when the server keeps no sessions
	anchor *Conn

	mu       sync.Mutex
	conn     *Conn // the attached transport; nil unless attached
	status   sessStatus
	ending   bool  // the application closed it: its transport's close ends it
	seq      int64 // DATA messages appended (server → client)
	sent     int64 // of them, handed to conn's socket
	in       int64 // client DATA messages taken
	first    int64 // number of frames[0]
	frames   []*sharedFrame
	bytes    int64 // payload bytes in frames
	trimmed  int64 // highest number dropped from the buffer for overflow
	flushQ   bool  // a cmdSessionFlush is queued for conn
	final    bool  // the anchor's OnClose is on its way
	moved    bool  // handed over to another node (session_cluster.go)
	frozen   bool  // leaving for another node: Send refused (session_move.go)
	expireAt int64 // while suspended, on the coarse clock
	// floor, for a session that came from another node: by origin, the
	// highest message number it has (session_move.go); nil otherwise.
	floor map[uint64]uint64
	// attach, for a session imported and not yet in the user index: the
	// importer's hook (SessionImport.Attach).
	attach func(register func(held []HeldMessage))
}

// session returns the session c belongs to (as anchor or transport), or
// nil for a plain connection.
func (c *Conn) session() *session {
	if e := c.ext.Load(); e != nil {
		return e.sess
	}
	return nil
}

// logical returns the connection the handler knows c by: the session's
// anchor, or c itself.
func (c *Conn) logical() *Conn {
	if s := c.session(); s != nil {
		return s.anchor
	}
	return c
}

// Resumable reports whether c speaks the resume envelope.
func (c *Conn) Resumable() bool { return c.session() != nil }

// sessionRegistry finds sessions by token, for a resume, and keeps the
// tokens of sessions that expired recently, so that their late clients
// hear "expired" rather than "unknown".
type sessionRegistry struct {
	mu      sync.Mutex
	byToken map[string]*session
	expired map[string]struct{} // bounded: cleared when full
	// moved: the node each session released to another went to, for a
	// resume presented here later (session_move.go); bounded like expired.
	moved map[string]string
	stats sessionCounters
}

// maxExpiredTokens bounds the expired tokens remembered.
const maxExpiredTokens = 1 << 16

func (r *sessionRegistry) add(s *session) {
	r.mu.Lock()
	if r.byToken == nil {
		r.byToken = make(map[string]*session)
	}
	r.byToken[s.token] = s
	delete(r.moved, s.token) // it came back
	r.mu.Unlock()
	r.stats.live.Add(1)
}

func (r *sessionRegistry) get(token string) (s *session, expired bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s = r.byToken[token]; s != nil {
		return s, false
	}
	_, expired = r.expired[token]
	return nil, expired
}

// forget removes s; expired remembers its token.
func (r *sessionRegistry) forget(s *session, expired bool) {
	if s.token == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byToken[s.token] != s {
		return
	}
	delete(r.byToken, s.token)
	r.stats.live.Add(-1)
	if expired {
		if r.expired == nil || len(r.expired) >= maxExpiredTokens {
			r.expired = make(map[string]struct{})
		}
		r.expired[s.token] = struct{}{}
	}
}

// newToken returns 128 random bits, base64url without padding (22
// characters of [A-Za-z0-9_-]), after prefix.
func newToken(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// validToken reports whether t may be a session token (docs/resume.md
// §3.2: 1-128 characters of [A-Za-z0-9_-]).
func validToken(t []byte) bool {
	if len(t) == 0 || len(t) > 128 {
		return false
	}
	for _, b := range t {
		switch {
		case b >= 'a' && b <= 'z', b >= 'A' && b <= 'Z', b >= '0' && b <= '9', b == '_', b == '-':
		default:
			return false
		}
	}
	return true
}

// sessionCounters are the server's session counts (Stats.Sessions).
type sessionCounters struct {
	live      atomic.Int64 // gauge: sessions in the registry
	suspended atomic.Int64 // gauge: sessions waiting for a resume
	suspends  atomic.Int64
	resumes   atomic.Int64
	expiries  atomic.Int64
	takeovers atomic.Int64
	replayed  atomic.Int64
	buffered  atomic.Int64 // gauge: payload bytes in session buffers
	overflows atomic.Int64 // frames dropped from a buffer for overflow
	moved     atomic.Int64 // sessions handed over to another node
	moveDrop  atomic.Int64 // SessionMoveDropped
	missed    [numMissed]atomic.Int64
}

// Reasons a resume failed (docs/resume.md §5.2).
const (
	missedUnknown = iota
	missedExpired
	missedOverflow
	missedGone
	missedUser
	missedInvalid
	numMissed
)

var missedNames = [numMissed]string{"unknown", "expired", "overflow", "gone", "user", "invalid"}

// SessionStats counts resumable sessions (docs/resume.md).
type SessionStats struct {
	Live      int64 `metric:"sessions,state=live,gauge" help:"Resumable sessions kept, by state: live (attached or suspended), suspended."`
	Suspended int64 `metric:"sessions,state=suspended,gauge"`
	Suspends  int64 `metric:"session_events_total,event=suspended" help:"Resumable session events: suspended, resumed, expired, taken_over (a resume closed a live connection), moved (handed over to another node)."`
	Resumes   int64 `metric:"session_events_total,event=resumed"`
	Expired   int64 `metric:"session_events_total,event=expired"`
	Takeovers int64 `metric:"session_events_total,event=taken_over"`
	Replayed  int64 `metric:"session_replayed_messages_total" help:"Messages replayed to resumed sessions."`
	Buffered  int64 `metric:"session_buffered_bytes,gauge" help:"Payload bytes kept in session buffers for resumes (--resume-buffer each)."`
	Overflows int64 `metric:"session_overflow_messages_total" help:"Messages dropped from full session buffers; a resume that needs them is told it missed messages."`
	Moved     int64 `metric:"session_events_total,event=moved"`
	// MoveDropped counts messages for sessions on their way to this node
	// that could not be held for them (the gateway's count: SessionMoveDropped).
	MoveDropped int64 `metric:"session_move_dropped_messages_total" help:"Messages for a session moving to this node that were not held for it: over what a move holds (4x --resume-buffer, at least 1 MiB), or held for an upgrade that never completed; each is logged."`
	// Missed counts failed resumes by reason: unknown, expired,
	// overflow, gone, user, invalid.
	Missed map[string]int64 `metric:"session_resumes_missed_total,reason" help:"Resumes that failed, by reason: unknown, expired, overflow, gone, user, invalid."`
}

func (r *sessionRegistry) snapshot() SessionStats {
	c := &r.stats
	st := SessionStats{
		Live: c.live.Load(), Suspended: c.suspended.Load(), Suspends: c.suspends.Load(),
		Resumes: c.resumes.Load(), Expired: c.expiries.Load(), Takeovers: c.takeovers.Load(),
		Replayed: c.replayed.Load(), Buffered: c.buffered.Load(), Overflows: c.overflows.Load(), Moved: c.moved.Load(), MoveDropped: c.moveDrop.Load(),
		Missed: make(map[string]int64, numMissed),
	}
	for i := range c.missed {
		st.Missed[missedNames[i]] = c.missed[i].Load()
	}
	return st
}

// SessionMoveDropped counts n messages lost for sessions moving to this
// node (Stats.Sessions.MoveDropped): the gateway holds them (moves.go).
func (s *Server) SessionMoveDropped(n int64) { s.sessions.stats.moveDrop.Add(n) }
