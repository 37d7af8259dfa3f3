package loop

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"runtime/debug"
	"sync"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// endpoint is what the server answers a request with: the WebSocket path,
// the plain routes, the Handler's HandshakeHook (nil if it has none) and
// the frames built once. All set by NewServer and read-only after.
type endpoint struct {
	wsPath    []byte
	routes    routeTable
	hook      HandshakeHook
	pingFrame []byte // an empty ping (session_frames.go)
}

// Request is an upgrade request as a HandshakeHook sees it. Its byte views
// alias the event loop's read buffer and are valid only until OnHandshake
// returns.
type Request struct {
	r           *codec.Request
	c           *Conn
	subprotocol string
	user        string
	pending     *PendingUpgrade
}

// Path returns the request path, without the query.
func (r *Request) Path() []byte { return r.r.Path() }

// Query returns the raw query string, without '?'.
func (r *Request) Query() []byte { return r.r.Query() }

// Origin returns the Origin header, or nil.
func (r *Request) Origin() []byte { return r.r.Origin() }

// Header returns the first value of the named header, or nil.
func (r *Request) Header(name string) []byte { return r.r.Header(name) }

// Protocols returns the offered subprotocols, without the resume
// envelope's entries (wsgate.*, docs/resume.md §1).
func (r *Request) Protocols() [][]byte { return visibleProtocols(r.r.Protocols(nil)) }

// RemoteAddr returns the client's address.
func (r *Request) RemoteAddr() netip.AddrPort { return r.c.remoteAddr() }

// Conn returns the connection being upgraded, for SetValue. Send and Close
// fail on it until the upgrade has completed.
func (r *Request) Conn() *Conn { return r.c }

// SelectProtocol sets the subprotocol to answer with; it should be one of
// Protocols.
func (r *Request) SelectProtocol(p string) { r.subprotocol = p }

// SetUser sets the connection's user (Conn.User), indexed for pushes to a
// user.
func (r *Request) SetUser(u string) { r.user = u }

// ID returns the ID the connection will have.
func (r *Request) ID() uint64 { return r.c.id }

// requestPool holds parse state for requests that arrive in more than one
// read; a request that arrives whole is parsed in the loop's own Request.
var requestPool = sync.Pool{New: func() any { return new(codec.Request) }}

// readHandshake parses the HTTP request received so far and answers it
// once complete: an upgrade, a plain page, or a refusal.
func (l *eventLoop) readHandshake(c *Conn) gnet.Action {
	s := l.srv
	gc := c.gc()
	// The codec caps a header block below 2 GiB: clamp likewise, so that
	// max+1 cannot overflow.
	max := min(s.cfg.MaxHeaderBytes, math.MaxInt32-1)
	// Parse sees at most max+1 bytes: enough to tell a complete header
	// block from one that is too large.
	buf, _ := gc.Peek(min(gc.InboundBuffered(), max+1))
	var hs *codec.Request
	if e := c.ext.Load(); e != nil {
		hs = e.hs
	}
	r := hs
	if r == nil {
		r = &l.req
		r.Reset()
	}
	n, err := r.Parse(buf, max)
	if err != nil {
		return l.refuse(c, err, nil)
	}
	if n == 0 {
		if s.mem != nil && !l.underMark(s.mem.refuseAt) {
			// The upgrade would be refused at its end (admit): do not
			// hold its bytes meanwhile.
			l.stats.refusals[refusedBudget].Add(1)
			return l.refuse(c, codec.ErrHandshakeUnavailable, refusalRetryAfter[refusedBudget])
		}
		if hs == nil { // keep the parse state for the next read
			hs = requestPool.Get().(*codec.Request)
			*hs = *r
			c.x().hs = hs
			l.stats.handshaking.Add(1)
			l.chargeHandshake(requestStateBytes)
		}
		l.setUnparsed(c, gc.InboundBuffered())
		return gnet.None
	}
	act := l.answer(c, r)
	l.releaseRequest(c)
	if act != gnet.None {
		return act
	}
	_, _ = gc.Discard(n)
	if c.state != stateOpen {
		l.setUnparsed(c, gc.InboundBuffered())
		return gnet.None // deferred: leave what follows buffered
	}
	if gc.InboundBuffered() > 0 {
		act = l.readFrames(c)
	}
	if act == gnet.None && c.gp != nil {
		l.setUnparsed(c, c.gc().InboundBuffered())
	}
	return act
}

// answer routes a complete request. It returns gnet.Close for anything but
// a successful upgrade.
func (l *eventLoop) answer(c *Conn, r *codec.Request) gnet.Action {
	s := l.srv
	path := r.Path()
	if !bytes.Equal(path, s.wsPath) {
		if !r.IsUpgrade() && bytes.Equal(r.Method(), methodGET) {
			if resp := s.routes.find(path); resp != nil {
				return l.serve(c, resp)
			}
		}
		return l.refuse(c, codec.ErrHandshakeNotFound, nil)
	}
	if err := r.CheckUpgrade(); err != nil {
		return l.refuse(c, err, nil)
	}
	if why := l.admit(c); why != admitOK {
		l.stats.refusals[why].Add(1)
		if l.refuseEnvelope(c, r, refusalRetryAfter[why]) { // session_handshake.go
			return gnet.Close
		}
		return l.refuse(c, codec.ErrHandshakeUnavailable, refusalRetryAfter[why])
	}
	l.negotiateDeflate(c, r) // before a hook: r does not outlive the handshake
	l.noteOffer(c, r)        // session_handshake.go
	if s.hook != nil {
		req := Request{r: r, c: c}
		if err := l.callHook(&req); err != nil {
			extra, err := refusal(err)
			return l.refuse(c, err, extra)
		}
		if req.pending != nil {
			c.state = stateDeferred
			l.chargeHandshake(l.deferredCost()) // its copy: released when it leaves stateDeferred
			return gnet.None
		}
		if req.subprotocol != "" || req.user != "" {
			e := c.x()
			e.subprotocol, e.user = req.subprotocol, req.user
		}
	}
	if !l.upgrade(c, r.Key()) {
		return gnet.Close
	}
	l.opened(c)
	return gnet.None
}

// upgrade writes the 101 response and opens c.
func (l *eventLoop) upgrade(c *Conn, key []byte) bool {
	var sub []byte
	var ss *session
	var hello helloInfo
	if e := c.ext.Load(); e != nil && e.offer != nil {
		// The resume envelope (session_handshake.go).
		if ans := envelopeAnswer(e.offer, e.subprotocol); ans != "" {
			hello = l.sessionUpgrade(c, e.offer)
			ss, sub = e.sess, []byte(ans)
		}
		e.offer = nil
	}
	if p := c.Subprotocol(); p != "" && sub == nil {
		sub = []byte(p)
	}
	l.scratch = l.appendUpgradeResponse(l.scratch[:0], c, key, sub) // deflate.go
	if ss != nil {
		l.scratch = l.appendHello(l.scratch, ss, hello) // in the 101's write
	}
	if !l.write(c, l.scratch) {
		return false
	}
	l.memUpgraded(c, c.state == stateDeferred)
	c.state = stateOpen
	// Send and Lookup take it from here (opened sets it too): the user
	// index below may hand it a push before opened runs.
	c.flags.set(fUpgraded)
	l.deflateOpened(c)
	l.handshakeDone(c)
	l.stats.upgrades[0].Add(1)
	if ss != nil && ss.attach != nil {
		l.attachMoved(c, ss) // session_move.go: the user index too
	} else if c.User() != "" {
		l.srv.users.add(c)
	}
	if ss != nil {
		l.flushSession(c) // a resume's replay
	}
	return true
}

var methodGET = []byte("GET")

// serve answers a plain HTTP request with a prebuilt response and closes.
func (l *eventLoop) serve(c *Conn, resp []byte) gnet.Action {
	l.stats.httpRequests.Add(1)
	l.write(c, resp)
	return gnet.Close
}

// refuse answers with the status err carries and closes the connection.
func (l *eventLoop) refuse(c *Conn, err error, extra []byte) gnet.Action {
	l.stats.upgrades[upgradeIndex(codec.HandshakeStatus(err))].Add(1)
	l.scratch = codec.AppendHandshakeError(l.scratch[:0], err, extra)
	l.write(c, l.scratch)
	return gnet.Close
}

// releaseRequest gives back the parse state of a split request.
func (l *eventLoop) releaseRequest(c *Conn) {
	if e := c.ext.Load(); e != nil && e.hs != nil {
		e.hs.Reset()
		requestPool.Put(e.hs)
		e.hs = nil
		l.stats.handshaking.Add(-1)
		l.chargeHandshake(-requestStateBytes)
	}
}

// callHook runs the HandshakeHook on the loop. A panic in it must not take
// the loop, and every connection on it, down: it is logged, counted, and
// answered with 500.
func (l *eventLoop) callHook(req *Request) (err error) {
	defer func() {
		if r := recover(); r != nil {
			l.srv.counters.handlerPanics.Add(1)
			l.srv.log.Error("wsgate: handshake hook panic", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			req.pending = nil
			err = errHookPanic
		}
	}()
	return l.srv.hook.OnHandshake(req)
}

var errHookPanic = &codec.HandshakeError{Status: 500, Reason: "internal error"}
