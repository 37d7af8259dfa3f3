package loop

import (
	"golang.org/x/sys/unix"
)

// A loop that runs late must not take its own lateness for the peers'
// death. When the process is starved of CPU, stopped, or paused by the
// garbage collector, its pongs wait unread in the kernel's socket buffers
// while the clock moves on; the first thing the loop does when it runs
// again may be the tick that finds every pong deadline passed. Cutting
// those connections turns a CPU spike into a reconnect storm.
//
// So each loop measures its lag, how late its ticks run: while the wheel
// wants ticks, a tick is due one TimerTick after the previous one, and any
// lateness beyond a further tick is a stall, recorded with the time it
// ended. Liveness deadlines (the pong timeout, the idle timeout) are then
// stretched by the stalls that ended after their interval began: the time
// the loop was away is not the peer's. And before a liveness close, the
// socket is asked whether it holds bytes the loop has not read (FIONREAD);
// if it does, the close waits a tick for the loop to read them. Both count
// as rescues (Stats.LivenessRescues). A dead peer sends nothing: its socket
// holds no unread bytes and it is closed once the stretched deadline passes.

// lagStalls is how many recent stalls a loop remembers. When a new one
// does not fit, the two oldest merge (their durations add, the later end
// is kept), which can only stretch deadlines more, never less.
const lagStalls = 8

// stall is a stretch of time in which a loop did not run its ticks.
type stall struct {
	end int64 // coarse time of the tick that saw it
	dur int64 // how much later than due that tick ran
}

// lagTracker is a loop's record of its lateness. Loop-owned.
type lagTracker struct {
	last   int64 // time of the previous tick while ticks were wanted; 0: none
	stalls [lagStalls]stall
	n      int // stalls held, oldest first
	// The longest stall and when it ended, for the LoopLagMax gauge.
	peak, peakAt int64
}

// observe records the tick at now; tick is the configured TimerTick. It
// returns the lateness recorded as a stall, 0 if the tick was on time.
func (t *lagTracker) observe(now, tick int64) int64 {
	last := t.last
	t.last = now
	if last == 0 {
		return 0
	}
	late := now - last - tick
	if late <= tick {
		return 0 // within a tick of due: the ticker's ordinary jitter
	}
	if t.n == lagStalls {
		t.stalls[1].dur += t.stalls[0].dur
		copy(t.stalls[:], t.stalls[1:])
		t.n--
	}
	t.stalls[t.n] = stall{end: now, dur: late}
	t.n++
	if late >= t.peak || now-t.peakAt > lagWindow {
		t.peak, t.peakAt = late, now
	}
	return late
}

// want gives the tracker its reference when ticks become wanted: the
// first tick is due within a tick of now, and a loop that stalls before
// it (at start, or after an idle spell) is late by the rest.
func (t *lagTracker) want(now int64) {
	if t.last == 0 {
		t.last = now
	}
}

// idle forgets the reference tick: the ticker stops waking a loop that
// wants no ticks, and the gap until the next one is not lateness.
func (t *lagTracker) idle() { t.last = 0 }

// since returns how long the loop stalled after from: the durations of the
// stalls that ended later. Stalls that ended at or before from cannot
// have delayed what happened after it.
func (t *lagTracker) since(from int64) int64 {
	var d int64
	for i := t.n - 1; i >= 0 && t.stalls[i].end > from; i-- {
		d += t.stalls[i].dur
	}
	return d
}

// recentMax returns the longest stall of the last lagWindow before now
// (an older peak gives way to the next stall).
func (t *lagTracker) recentMax(now int64) int64 {
	if t.peakAt == 0 || now-t.peakAt > lagWindow {
		return 0
	}
	return t.peak
}

// lagWindow is how far back the LoopLagMax gauge looks: a minute, in
// nanoseconds, so that a scrape every 15 or 30 s sees every stall.
const lagWindow = 60e9

// observeLag runs at the start of each tick.
func (l *eventLoop) observeLag(now int64) {
	if late := l.lag.observe(now, int64(l.srv.cfg.TimerTick)); late > 0 {
		l.stats.lagNanos.Add(late)
		l.stats.lagStalls.Add(1)
	}
	l.stats.lagMax.Store(l.lag.recentMax(now))
}

// livenessLate reports whether a liveness close of c, due since from on
// paper, should wait: because the loop stalled since then (the deadline
// moves by the stall, returned as the new deadline), or because c's socket
// holds bytes the loop has not read yet (looked at again next tick). It
// counts each rescue.
func (l *eventLoop) livenessLate(c *Conn, from, deadline, now int64) (int64, bool) {
	if d := deadline + l.lag.since(from); now < d {
		l.stats.livenessRescues.Add(1)
		return d, true
	}
	if unreadBytes(c) > 0 {
		l.stats.livenessRescues.Add(1)
		return now + int64(l.srv.cfg.TimerTick), true
	}
	return 0, false
}

// handshakeLate reports whether c's handshake deadline, passed on paper,
// moves by the loop's stalls since the handshake began, and where to.
func (l *eventLoop) handshakeLate(c *Conn, now int64) (int64, bool) {
	from := c.expireAt - int64(l.srv.cfg.HandshakeTimeout)
	if d := c.expireAt + l.lag.since(from); now < d {
		l.stats.livenessRescues.Add(1)
		return d, true
	}
	return 0, false
}

// unreadBytes returns how many bytes wait in c's socket receive buffer,
// unread by the loop; 0 if that cannot be told. One ioctl, only on the way
// to a liveness close.
func unreadBytes(c *Conn) int {
	if c.gp == nil {
		return 0
	}
	fd := c.gc().Fd()
	if fd < 0 {
		return 0
	}
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
