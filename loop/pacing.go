package loop

import (
	"sync/atomic"
	"time"
)

// Paced broadcast. Broadcast hands a frame to the loops and returns:
// nothing slows a client that publishes faster than its subscribers read,
// and the subscribers that fall behind by more than Config.MaxOutbound
// are cut (or miss messages, under SlowDrop). BroadcastPaced, for a handler
// that broadcasts what its client sends (gateway.Broadcast), also waits
// while the loops have more than a window of broadcast frames not yet
// written (a quarter of MaxOutbound) or a connection's outbound queue is
// over half its bound: the handler, and through its full mailbox the
// publishing client's input (inbound.go), go at the pace of the slowest
// reader. A connection whose queue stays over half the bound for
// stuckAfter is stuck, not slow: it paces no one any more, and the
// slow-consumer policy deals with it.
//
// Within the window the handler does not wait for the loops: the frames
// it broadcasts meanwhile queue up in their mailboxes, and each loop
// writes them to a subscriber with one writev (publishRun) instead of
// one pass over its connections per frame.

// stuckAfter is how long a connection may pace a broadcast.
const stuckAfter = time.Second

// BroadcastPaced is Broadcast, then waits as described above. It runs on
// the caller's goroutine (a handler may block; a loop must not call it).
func (s *Server) BroadcastPaced(op OpCode, data []byte) (int, error) {
	n, err := s.Broadcast(op, data)
	if err != nil || n == 0 {
		return n, err
	}
	s.Pace()
	return n, nil
}

// paceState is what Pace looks at without asking the loops.
type paceState struct {
	// unwritten is the bytes of broadcast frames handed to loops and not
	// yet written by them, once per loop (fanOut, publishRun).
	unwritten atomic.Int64
}

// paceWindowMin is the window without an outbound bound.
const paceWindowMin = 256 << 10

// paceWindow is how many bytes of broadcast frames Pace lets be on their
// way to the loops without waiting: a quarter of MaxOutbound, so that
// with a queue at half its bound they still fit.
func (s *Server) paceWindow() int64 {
	if b := int64(s.cfg.MaxOutbound); b > 0 {
		return b / 4
	}
	return paceWindowMin
}

// Pace is BroadcastPaced's wait, for a broadcast made otherwise (the
// gateway's, numbered for a cluster): while more than the window is not
// yet written, or a loop saw a connection's outbound queue over half its
// bound, until the loops have written what they were given and no such
// queue is left, stuck ones aside.
func (s *Server) Pace() {
	if s.pace.unwritten.Load() <= s.paceWindow() && !s.anyCongested() {
		return
	}
	for wait := time.Duration(0); s.congested(); {
		// A queue drains as its client reads; gnet does not say when, so
		// look again shortly.
		wait = min(max(2*wait, 100*time.Microsecond), 5*time.Millisecond)
		time.Sleep(wait)
	}
}

// congested asks every loop, behind whatever it was given before, whether
// a connection's outbound queue is over half its bound and has not been
// for stuckAfter.
func (s *Server) congested() bool {
	var n atomic.Int64
	s.onEveryLoop(time.Second, func(l *eventLoop) {
		c := l.congestedConns()
		if c == 0 {
			l.congested.Store(false)
		}
		n.Add(c)
	})
	return n.Load() > 0
}

// anyCongested reports whether a loop saw a connection's queue over half
// its bound since it last found none (a hint: Pace then asks them all).
func (s *Server) anyCongested() bool {
	for _, l := range s.eventLoops() {
		if l.congested.Load() {
			return true
		}
	}
	return false
}

// noteCongestion sets l's hint when a write left c's queue, b bytes in
// gnet's buffer, over half the bound, unless c is stuck already.
func (l *eventLoop) noteCongestion(c *Conn, b int64) {
	bound := int64(l.srv.cfg.MaxOutbound)
	if bound <= 0 || b+c.outQueued() <= bound/2 || l.congested.Load() {
		return
	}
	if e := c.ext.Load(); e != nil && e.congestedAt != 0 && l.srv.now()-e.congestedAt >= int64(stuckAfter) {
		return
	}
	l.congested.Store(true)
}

// congestedConns refreshes the outbound snapshots of the connections with
// bytes in gnet's buffer and counts those over half the bound that are not
// stuck. It runs on the loop.
func (l *eventLoop) congestedConns() int64 {
	bound := int64(l.srv.cfg.MaxOutbound)
	if bound <= 0 {
		return 0
	}
	now := l.srv.now()
	var n int64
	for _, c := range l.flushing {
		if c.gp == nil || c.state != stateOpen {
			continue
		}
		b := int64(c.gc().OutboundBuffered())
		l.setOutBuffered(c, b)
		e := c.ext.Load()
		if b+c.outQueued() <= bound/2 {
			if e != nil {
				e.congestedAt = 0
			}
			continue
		}
		if e == nil {
			e = c.x()
		}
		if e.congestedAt == 0 {
			e.congestedAt = now
		}
		if now-e.congestedAt < int64(stuckAfter) {
			n++
		}
	}
	return n
}
