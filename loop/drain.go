package loop

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/gobwas/ws"
)

// A drain takes a gateway out of service without a reconnect storm: it
// stops admitting upgrades (503 with Retry-After; /readyz answers 503), then
// closes the open connections with 1001 spread evenly, with jitter, over
// Options.DrainWindow. Each close reason carries a reconnect hint,
// "retry-after=N" seconds drawn at random over the window, for clients
// that honour it. Frames already queued for a connection are written
// before its close frame. What is still open after the window and
// Options.DrainGrace is closed at once.

// ErrDraining is returned by a second Drain.
var ErrDraining = errors.New("loop: already draining")

// Drain drains the server (see above) and returns when every connection is
// gone. If ctx ends first, the rest are closed at once with 1001 and Drain
// returns ctx's error. The server keeps running, refusing upgrades, until
// Shutdown.
func (s *Server) Drain(ctx context.Context) error {
	if !s.draining.CompareAndSwap(false, true) {
		return ErrDraining
	}
	window := s.opts.DrainWindow
	start := s.now()
	for _, l := range s.eventLoops() {
		l.enqueue(command{kind: cmdFunc, fn: func() { l.scheduleDrain(start, window) }})
	}
	deadline := time.NewTimer(window + s.opts.DrainGrace)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for s.ConnsOpen() > 0 {
		select {
		case <-poll.C:
			continue
		case <-deadline.C:
		case <-ctx.Done():
		}
		break
	}
	if s.ConnsOpen() == 0 {
		return nil
	}
	// The window and grace are over, or the caller is out of patience:
	// close the rest at once.
	for _, l := range s.eventLoops() {
		l.enqueue(command{kind: cmdFunc, fn: l.dropAll})
	}
	for s.ConnsOpen() > 0 {
		<-poll.C
	}
	return ctx.Err()
}

// Draining reports whether a drain or shutdown has started.
func (s *Server) Draining() bool { return s.draining.Load() }

// scheduleDrain gives each open connection of the loop a close time: the
// loop's share of the window cut into equal slots, one connection per slot
// at a random point within it, so closes are even across the window and no
// two loops line up. It runs on the loop.
func (l *eventLoop) scheduleDrain(start int64, window time.Duration) {
	var open int64
	for c := range l.conns {
		if c.state == stateOpen {
			open++
		}
	}
	if open == 0 {
		return
	}
	slot := int64(window) / open
	i := int64(0)
	for c := range l.conns {
		if c.state != stateOpen {
			continue
		}
		at := start + i*slot + l.srv.jitter(time.Duration(slot))
		i++
		c.draining = true
		if c.expireAt == 0 || at < c.expireAt {
			c.expireAt = at
		}
		if !c.timer.Scheduled() || at < c.timer.Deadline() {
			l.schedule(c, at)
		}
	}
}

// drainReason is the close reason of a drained connection: a reconnect
// hint spread over the window.
func (l *eventLoop) drainReason() string {
	secs := int64(l.srv.opts.DrainWindow/time.Second) + 1
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
