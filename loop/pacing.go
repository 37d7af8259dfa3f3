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
// until the loops have written the frame and no connection's outbound
// queue is over half its bound: the handler, and through its full mailbox
// the publishing client's input (inbound.go), go at the pace of the
// slowest reader. A connection whose queue stays over half the bound for
// stuckAfter is stuck, not slow: it paces no one any more, and the
// slow-consumer policy deals with it.

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

// Pace is BroadcastPaced's wait, for a broadcast made otherwise (the
// gateway's, numbered for a cluster): until the loops have written what
// they were given and no connection's outbound queue is over half its
// bound, stuck ones aside.
func (s *Server) Pace() {
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
	s.onEveryLoop(time.Second, func(l *eventLoop) { n.Add(l.congestedConns()) })
	return n.Load() > 0
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
		if c.gc == nil || c.state != stateOpen {
			continue
		}
		b := int64(c.gc.OutboundBuffered())
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
