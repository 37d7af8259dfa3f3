package loop

import (
	"errors"
	"net/netip"
	"sync/atomic"

	"github.com/panjf2000/gnet/v2"

	"github.com/wsgate/wsgate/codec"
)

// A deferred upgrade: a HandshakeHook that needs time (a backend call, a
// signature check) calls Request.Defer and returns; the connection waits in
// stateDeferred, costing the loop nothing, until someone calls Accept or
// Reject from any goroutine. The handshake timeout still applies.

// ErrAlreadyDecided is returned by a second Accept or Reject.
var ErrAlreadyDecided = errors.New("loop: upgrade already accepted or rejected")

// PendingUpgrade is an upgrade request waiting for a decision. It holds a
// copy of the request, so its accessors are safe from any goroutine.
type PendingUpgrade struct {
	c       *Conn
	raw     []byte
	req     codec.Request
	decided atomic.Bool
}

// Accept says how to complete a deferred upgrade.
type Accept struct {
	Subprotocol string   // answered in Sec-WebSocket-Protocol, if set
	User        string   // Conn.User, indexed for pushes to a user
	Topics      []string // subscribed before the handler's OnOpen
	Value       any      // Conn.Value
}

// Defer postpones the decision on this request: OnHandshake returns nil,
// and the returned PendingUpgrade's Accept or Reject completes it later.
func (r *Request) Defer() *PendingUpgrade {
	p := &PendingUpgrade{c: r.c, raw: append([]byte(nil), r.r.Raw()...)}
	if n, err := p.req.Parse(p.raw, len(p.raw)+1); n == 0 || err != nil {
		panic("loop: re-parsing a parsed request failed") // cannot happen
	}
	r.pending = p
	return p
}

// ID returns the ID the connection will have.
func (p *PendingUpgrade) ID() uint64 { return p.c.id }

// RemoteAddr returns the client's address.
func (p *PendingUpgrade) RemoteAddr() netip.AddrPort { return p.c.remoteAddr() }

// Path returns the request path.
func (p *PendingUpgrade) Path() string { return string(p.req.Path()) }

// Query returns the raw query string.
func (p *PendingUpgrade) Query() string { return string(p.req.Query()) }

// Header returns the first value of the named header, or "".
func (p *PendingUpgrade) Header(name string) string { return string(p.req.Header(name)) }

// Protocols returns the offered subprotocols.
func (p *PendingUpgrade) Protocols() []string {
	var out []string
	for _, b := range visibleProtocols(p.req.Protocols(nil)) {
		out = append(out, string(b))
	}
	return out
}

// Accept completes the upgrade with 101. It returns at once; the loop
// writes the response.
func (p *PendingUpgrade) Accept(a Accept) error {
	if p.decided.Swap(true) {
		return ErrAlreadyDecided
	}
	l := p.c.loop
	if !l.enqueue(command{kind: cmdFunc, fn: func() { l.acceptDeferred(p, a) }}) {
		return ErrServerClosed
	}
	return nil
}

// Reject refuses the upgrade with the status, reason and header fields
// err carries (a *HandshakeError; 403 otherwise).
func (p *PendingUpgrade) Reject(err error) error {
	if p.decided.Swap(true) {
		return ErrAlreadyDecided
	}
	extra, err := refusal(err)
	l := p.c.loop
	if !l.enqueue(command{kind: cmdFunc, fn: func() { l.rejectDeferred(p.c, err, extra) }}) {
		return ErrServerClosed
	}
	return nil
}

// acceptDeferred runs on the loop.
func (l *eventLoop) acceptDeferred(p *PendingUpgrade, a Accept) {
	c := p.c
	if c.state != stateDeferred {
		return // gone meanwhile
	}
	if a.Subprotocol != "" || a.User != "" || a.Value != nil {
		e := c.x()
		e.subprotocol, e.user = a.Subprotocol, a.User
		if a.Value != nil {
			e.value.Store(valueBox{a.Value})
		}
	}
	// Subscribe before the 101 goes out, so that a publish the client
	// provokes as soon as it is connected reaches it.
	for _, name := range a.Topics {
		if name != "" {
			l.subscribe(c, l.srv.topics.acquire(name, l.idx))
		}
	}
	if !l.upgrade(c, p.req.Key()) {
		return
	}
	l.opened(c)
	if c.gp != nil && c.gc().InboundBuffered() > 0 {
		// Frames the client sent early: buffered, and past the header
		// bound its reads paused (read.go). They raise no new event.
		l.finish(c, l.traffic(c))
	}
	if c.gp != nil && !c.flags.has(fInPaused) {
		l.readsOn(c)
	}
}

// rejectDeferred runs on the loop.
func (l *eventLoop) rejectDeferred(c *Conn, err error, extra []byte) {
	if c.state != stateDeferred {
		return
	}
	l.finish(c, l.refuse(c, err, extra))
}

// finish carries out an action returned by a read path that ran outside
// OnTraffic.
func (l *eventLoop) finish(c *Conn, act gnet.Action) {
	if act == gnet.Close && c.gp != nil {
		_ = l.el.Close(c.gc())
	}
}
