package loop

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wsgate/wsgate/internal/clock"
)

// timebase is the server's time. coarse is written by the ticker goroutine
// only and read by anyone (now); epoch and clk are set before the ticker
// starts and read-only after. tickStop is closed by Shutdown, tickDone by
// the ticker as it returns. rng is used under rngMu only (jitter), from
// the loops and from Drain.
type timebase struct {
	// coarse is the time, in nanoseconds since epoch, stamped each tick.
	coarse   atomic.Int64
	epoch    time.Time
	clk      clock.Clock // Config.Clock, or the system's
	tickStop chan struct{}
	tickDone chan struct{}
	rng      *rand.Rand // jitter
	rngMu    sync.Mutex
}

// now returns the coarse clock: nanoseconds since Start, as of the last tick.
func (s *Server) now() int64 { return s.coarse.Load() }

// ticker stamps the coarse clock and asks each loop with timers to advance
// its wheel. It sleeps between ticks; an idle server costs a few wakeups a
// second and never spins.
func (s *Server) ticker() {
	defer close(s.tickDone)
	t := s.clk.NewTicker(s.cfg.TimerTick)
	defer t.Stop()
	for {
		select {
		case <-s.tickStop:
			return
		case <-t.C():
		}
		s.coarse.Store(int64(s.clk.Now().Sub(s.epoch)))
		for _, l := range s.eventLoops() {
			if l.tickWanted.Load() || l.retryArmed.Load() {
				l.tickDue.Store(true)
				l.wake()
			}
		}
		if s.cfg.Clock != nil {
			s.settle()
		}
		t.Done()
	}
}

// settle waits until every loop has run the tick just signalled, with an
// injected clock only (a test's: its Advance then returns when each tick
// has had its effect). A loop runs its inbox before its tick, so a second
// round of commands, queued once the first ran, runs after the tick.
func (s *Server) settle() {
	noop := func(*eventLoop) {}
	s.onEveryLoop(time.Second, noop)
	s.onEveryLoop(time.Second, noop)
}

// jitter returns a uniform random duration in [0, d).
func (s *Server) jitter(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	s.rngMu.Lock()
	v := s.rng.Int64N(int64(d))
	s.rngMu.Unlock()
	return v
}
