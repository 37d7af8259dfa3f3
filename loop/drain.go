package loop

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
)

// drainState is a drain's progress. draining is an atomic latch (Drain,
// Shutdown) that the loops and the admission read; drainEnd, when the
// drain window ends on the coarse clock, is stored by Drain before it asks
// the loops to schedule their closes. stopAcceptOnce makes the listeners
// stop once, from Drain or Shutdown.
type drainState struct {
	draining       atomic.Bool
	drainEnd       atomic.Int64
	stopAcceptOnce sync.Once
}

// A drain takes a gateway out of service without a reconnect storm: it
// stops admitting upgrades (503 with Retry-After; /readyz answers 503), then
// closes the open connections with 1001 spread evenly, with jitter, over
// Config.DrainWindow. Each close reason carries a reconnect hint,
// "retry-after=N" seconds drawn at random over the window, for clients
// that honour it. Frames already queued for a connection are written
// before its close frame. What is still open after the window and
// Config.DrainGrace gets a close frame and its TCP connection is cut.
//
// Every connection that is upgraded when the drain starts, or later (a
// deferred upgrade accepted meanwhile, a loop that had no connection
// then), has its close scheduled within the window (drainLate). Connections
// that have not upgraded do not hold the drain open: it waits for
// WebSocket connections only. With Config.ReusePort the listeners stop
// accepting at once (gnet's StopAccepting, third_party/gnet/PATCH.md), so
// that the kernel hands new connections to the other processes on the
// port; without it, new connections are still accepted, to answer /readyz
// and upgrades with 503.

// ErrDraining is returned by a second Drain.
var ErrDraining = errors.New("loop: already draining")

// Drain drains the server (see above) and returns when every WebSocket
// connection is gone and the handler has seen its OnClose, or at the
// window's and grace's end, after closing the rest. If ctx ends first, the
// rest are closed at once with 1001 and Drain returns ctx's error. The
// server keeps running, refusing upgrades, until Shutdown.
func (s *Server) Drain(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return ErrDraining
	}
	window := s.cfg.DrainWindow
	start := s.now()
	s.drainEnd.Store(start + int64(window))
	if s.cfg.ReusePort {
		s.stopAccepting()
	}
	for _, l := range s.eventLoops() {
		l.enqueue(command{kind: cmdFunc, fn: func() { l.scheduleDrain(start) }})
	}
	deadline := s.clk.NewTimer(window + s.cfg.DrainGrace)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for !s.drained() {
		select {
		case <-poll.C:
			continue
		case <-deadline.C():
		case <-ctx.Done():
		}
		break
	}
	if s.drained() {
		return nil
	}
	// The window and grace are over, or the caller is out of patience:
	// close the rest at once, then give their OnClose a moment (Shutdown
	// waits for the rest, bounded by its own deadline).
	s.onEveryLoop(time.Second, (*eventLoop).dropAll)
	wait := s.clk.NewTimer(s.cfg.CloseTimeout)
	defer wait.Stop()
	for !s.drained() {
		select {
		case <-poll.C:
			continue
		case <-wait.C():
		case <-ctx.Done():
		}
		break
	}
	return ctx.Err()
}

// drained reports whether no WebSocket connection is left (admitted
// connections include those whose upgrade waits for a hook) and every
// OnClose has run.
func (s *Server) drained() bool {
	// A suspended session has no connection to drain: it waits for its
	// client (on another node, in a cluster) until Shutdown ends it
	// (session_life.go).
	return s.admission.open.Load() == 0 && s.handlerConns.Load()-s.sessions.stats.suspended.Load() <= 0
}

// onEveryLoop runs fn on every loop and waits, at most limit, until all
// have run it.
func (s *Server) onEveryLoop(limit time.Duration, fn func(*eventLoop)) {
	loops := s.eventLoops()
	done := make(chan struct{}, len(loops))
	sent := 0
	for _, l := range loops {
		if l.enqueue(command{kind: cmdFunc, fn: func() { fn(l); done <- struct{}{} }}) {
			sent++
		}
	}
	t := time.NewTimer(limit)
	defer t.Stop()
	for range sent {
		select {
		case <-done:
		case <-t.C:
			return
		}
	}
}

// Draining reports whether a drain or shutdown has started.
func (s *Server) Draining() bool { return s.draining.Load() }

// stopAccepting shuts the listeners, once; a failure is logged (the
// connections that keep arriving are refused with 503 instead).
func (s *Server) stopAccepting() {
	s.stopAcceptOnce.Do(func() {
		if err := s.eng.StopAccepting(); err != nil {
			s.log.Warn("wsgate: could not stop accepting", "err", err)
			return
		}
		s.log.Info("wsgate: stopped accepting new connections")
	})
}

// drainSpan returns the times, on the coarse clock, over which drain closes
// go out: from start to the window's end less a tick, since a deadline
// fires up to one tick late and the last close must not come after the
// window.
func (s *Server) drainSpan(start int64) (from, until int64) {
	end := s.drainEnd.Load()
	if tick := int64(s.cfg.TimerTick); end-start > 2*tick {
		end -= tick
	}
	return start, max(end, start)
}

// scheduleDrain gives each open connection of the loop a close time: the
// loop's share of the window cut into equal slots, one connection per slot
// at a random point within it, so closes are even across the window and no
// two loops line up. It runs on the loop.
func (l *eventLoop) scheduleDrain(start int64) {
	var open int64
	for c := range l.conns {
		if c.state == stateOpen && !c.flags.has(fDraining) {
			open++
		}
	}
	if open == 0 {
		return
	}
	from, until := l.srv.drainSpan(start)
	slot := (until - from) / open
	i := int64(0)
	for c := range l.conns {
		if c.state != stateOpen || c.flags.has(fDraining) {
			continue
		}
		l.drainAt(c, from+i*slot+l.srv.jitter(time.Duration(slot)))
		i++
	}
}

// drainLate schedules the drain close of a connection upgraded after the
// drain began: at a random time in what is left of the window, or now.
func (l *eventLoop) drainLate(c *Conn, now int64) {
	_, until := l.srv.drainSpan(now)
	l.drainAt(c, now+l.srv.jitter(time.Duration(until-now)))
}

// drainAt makes at c's drain close time.
func (l *eventLoop) drainAt(c *Conn, at int64) {
	c.flags.set(fDraining)
	if c.expireAt == 0 || at < c.expireAt {
		c.expireAt = at
	}
	if !c.timer.Scheduled() || c.expireAt < c.timer.Deadline() {
		l.schedule(c, c.expireAt)
	}
}

// drainReason is the close reason of a drained connection: a reconnect
// hint spread over the window.
func (l *eventLoop) drainReason() string {
	secs := int64(l.srv.cfg.DrainWindow/time.Second) + 1
	hint := 1 + l.srv.jitter(time.Duration(secs))
	return "going away; retry-after=" + strconv.FormatInt(hint, 10)
}

// dropAll ends every connection of the loop now: open ones get a 1001
// frame first, none waits for an answer.
func (l *eventLoop) dropAll() {
	for c := range l.conns {
		if c.state == stateOpen {
			l.startClose(c, ws.StatusGoingAway, "going away", causeShutdown)
		}
		l.drop(c, c.cause)
	}
}
