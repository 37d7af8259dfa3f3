package loop

import (
	"math"
	"time"

	"github.com/gobwas/ws"

	"github.com/wsgate/wsgate/timerwheel"
)

// Every deadline of a connection lives in one wheel node in the Conn: the
// node is scheduled for the earliest deadline, and when it fires the
// connection works out which deadlines have passed and re-arms for the
// next. Activity never touches the wheel: reading a frame stamps lastRead
// and a data message stamps lastData (from the coarse clock), and a node
// that fires early is simply re-armed for the remainder, as Netty's idle
// handler does. A busy connection costs no wheel operation per frame.

// wheelSlots is the number of slots per wheel: at the default 100 ms tick
// one rotation is 51.2 s, longer than the default ping interval, so most
// entries never wait a round.
const wheelSlots = 512

func (l *eventLoop) initTimers() {
	l.wheel = timerwheel.New[struct{}](l.srv.cfg.TimerTick, wheelSlots, l.srv.now(), l.fire)
}

// tick advances the loop's wheel to the coarse clock.
func (l *eventLoop) tick() {
	l.observeLag(l.srv.now()) // lag.go
	l.wheel.Advance(l.srv.now())
	l.watchFlushes()
	published := l.mailboxWindow | l.inboundWindow
	l.stats.mailboxMax.Store(int64(l.mailboxWindow))
	l.stats.inboundMax.Store(int64(l.inboundWindow))
	l.mailboxWindow, l.inboundWindow = 0, 0
	// The ticker wakes only loops that want it: an idle loop with no
	// deadline pending costs no wakeup at all. (A gauge just published
	// needs one more tick to fall back to zero.)
	l.tickWanted.Store(l.budgetTick() || l.wheel.Len() > 0 || len(l.flushing) > 0 || published != 0)
	if !l.tickWanted.Load() {
		l.lag.idle()
	}
}

func (l *eventLoop) schedule(c *Conn, at int64) {
	l.wheel.Schedule(&c.timer, at)
	l.wantTicks()
}

// wantTicks asks the ticker to wake the loop each tick until tick finds
// nothing left to do.
func (l *eventLoop) wantTicks() {
	if !l.tickWanted.Load() {
		l.tickWanted.Store(true)
		l.lag.want(l.srv.now()) // the first tick is due from now (lag.go)
	}
}

func (l *eventLoop) disarm(c *Conn) {
	l.wheel.Cancel(&c.timer)
}

// armHandshake starts the handshake deadline of a new connection.
func (l *eventLoop) armHandshake(c *Conn) {
	c.expireAt = l.srv.now() + int64(l.srv.cfg.HandshakeTimeout)
	l.schedule(c, c.expireAt)
}

// armClose gives the peer the close timeout to answer our close frame.
func (l *eventLoop) armClose(c *Conn) {
	c.expireAt = l.srv.now() + int64(l.srv.cfg.CloseTimeout)
	l.schedule(c, c.expireAt)
}

// opened starts the deadlines of an upgraded connection and tells the
// handler.
func (l *eventLoop) opened(c *Conn) {
	s := l.srv
	t := &s.cfg.Config
	now := s.now()
	// Pretend the last read was a random time within the last interval, so
	// that the first ping, and the ones after it, spread over the whole
	// interval instead of following the connection rate.
	c.lastRead = now - s.jitter(t.PingInterval)
	c.expireAt = 0
	if t.MaxLifetime > 0 {
		// ±10% jitter, so clients told to rebalance do not return together.
		c.expireAt = now + int64(t.MaxLifetime)*9/10 + s.jitter(t.MaxLifetime/5)
	}
	c.flags.set(fUpgraded)
	transport := false
	if ss := c.session(); ss != nil && ss.anchor != c {
		transport = true // a resume: the handler knows the session's anchor
	} else {
		s.handlerConns.Add(1) // until its OnClose has run (dispatch.go)
	}
	if s.draining.Load() {
		// Upgraded after the drain was scheduled (a deferred upgrade, or
		// a loop that had no connection then): it is drained too.
		l.drainLate(c, now)
	}
	l.checkOpen(c, now)
	if !transport {
		l.deliver(c, event{kind: evOpen})
	}
}

// fire runs on the loop, from tick, when c's node is due.
func (l *eventLoop) fire(n *timerwheel.Node[struct{}], now int64) {
	c := connOfTimer(n)
	switch c.state {
	case stateProxy, stateHandshake, stateDeferred:
		if now < c.expireAt {
			l.schedule(c, c.expireAt)
			return
		}
		if c.state != stateDeferred {
			// A loop that stalled during the handshake is the gateway's
			// lateness, not the client's (lag.go). Unread bytes do not
			// rescue a handshake: a client trickling its request must
			// not be able to keep it open.
			if late, ok := l.handshakeLate(c, now); ok {
				l.schedule(c, late)
				return
			}
		}
		l.stats.handshakeTimeoutBytes.Add(int64(c.gc().InboundBuffered()))
		l.stats.closes[causeHandshakeTimeout].Add(1)
		l.drop(c, causeHandshakeTimeout)
	case stateClosing:
		if c.lingering() && c.gc().OutboundBuffered() == 0 {
			l.drop(c, c.cause) // our close frame is out: done
			return
		}
		if now < c.expireAt {
			at := c.expireAt
			if c.lingering() {
				at = min(at, now+int64(l.srv.cfg.TimerTick))
			}
			l.schedule(c, at)
			return
		}
		l.stats.closeTimeouts.Add(1)
		l.drop(c, c.cause)
	case stateOpen:
		l.checkOpen(c, now)
	case stateClosed:
		l.sessionFire(c, now) // a kept anchor (session_life.go)
	}
}

// checkOpen acts on the deadlines of an open connection that have passed
// and schedules its node for the next one.
func (l *eventLoop) checkOpen(c *Conn, now int64) {
	s := l.srv
	t := &s.cfg.Config
	next := int64(math.MaxInt64)
	if e := c.ext.Load(); e != nil && e.failErr != nil {
		// A protocol error waits for the handler (close.go), at most
		// the close timeout.
		if now >= e.failAt {
			l.failPendingNow(c)
			return
		}
		next = e.failAt
	}
	if c.expireAt > 0 {
		if now >= c.expireAt {
			if c.flags.has(fDraining) {
				l.startClose(c, ws.StatusGoingAway, l.drainReason(), causeShutdown)
			} else {
				l.startClose(c, ws.StatusGoingAway, "max lifetime", causeLifetime)
			}
			return
		}
		next = min(next, c.expireAt)
	}
	if t.IdleTimeout > 0 {
		last := c.lastDataAt()
		d := last + int64(t.IdleTimeout)
		if now >= d {
			if late, ok := l.livenessLate(c, last, d, now); ok {
				d = late // the loop's lag, not the peer's silence (lag.go)
			} else {
				l.startClose(c, ws.StatusNormalClosure, "idle timeout", causeIdle)
				return
			}
		}
		next = min(next, d)
	}
	if t.PingInterval > 0 && c.flags.has(fInPaused) {
		// Its input is paused (inbound.go): its pong could not be read,
		// so it is not pinged; readsOn counts it as heard when reads
		// resume.
		c.heard(now)
		next = min(next, now+int64(t.PingInterval))
	} else if t.PingInterval > 0 {
		if sent, ok := c.pingedAt(t.PingInterval); ok {
			d := sent + int64(t.PongTimeout)
			if now >= d {
				late, ok := l.livenessLate(c, sent, d, now)
				if !ok {
					l.drop(c, causeLiveness)
					return
				}
				// The loop's lag, or a pong not read yet (lag.go):
				// look again at the stretched deadline.
				next = min(next, late)
			} else {
				// Look again at the pong deadline, or at the next ping's
				// time if that comes first (PongTimeout > PingInterval),
				// so that an answered ping does not stretch the interval.
				next = min(next, d, sent+int64(t.PingInterval))
			}
		} else if due := c.lastRead + int64(t.PingInterval); now >= due {
			if !l.write(c, l.heartbeat(c)) { // a ping, or a BEAT (session_frames.go)
				return
			}
			l.stats.pingsSent.Add(1)
			c.pinged(now, t.PingInterval)
			next = min(next, now+int64(t.PongTimeout), now+int64(t.PingInterval))
		} else {
			next = min(next, due)
		}
	}
	if next != math.MaxInt64 {
		l.schedule(c, next)
	}
}

// heard records that the peer sent something (a frame header or payload
// bytes) at now, on the loop: proof of life, which answers our ping.
func (c *Conn) heard(now int64) {
	c.lastRead = now
	if c.flags.has(fPinged) {
		c.flags.clear(fPinged)
	}
}

// pinged records our ping sent at now, on the loop. The Conn keeps no
// field for the ping's time: until the peer is heard (heard clears
// fPinged), lastRead is used for nothing else, so it holds the ping's time
// less the interval, and pingedAt adds the interval back. Any frame read
// after the ping answers it, as when the ping's time had a field of its
// own (a read stamps lastRead with a coarse time at least the ping's).
func (c *Conn) pinged(now int64, interval time.Duration) {
	c.lastRead = now - int64(interval)
	c.flags.set(fPinged)
}

// pingedAt returns when our unanswered ping went out, and whether there
// is one; interval is the one pinged was given (Config.PingInterval).
func (c *Conn) pingedAt(interval time.Duration) (int64, bool) {
	if !c.flags.has(fPinged) {
		return 0, false
	}
	return c.lastRead + int64(interval), true
}
